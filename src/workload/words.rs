//! The project's own word lists for the synthetic English-like text (written for this project,
//! not taken from any corpus). Inflections are derived by rules in `synthetic.rs`; irregular
//! forms are spelled out as `base:form[:form]`.

/// Nouns; `singular:plural` when the plural is irregular.
#[rustfmt::skip]
pub(crate) const NOUNS: &[&str] = &[
    "time", "year", "day", "week", "month", "hour", "minute", "morning", "evening", "night",
    "man:men", "woman:women", "child:children", "person:people", "friend", "family", "parent",
    "teacher", "student", "doctor", "driver", "farmer", "writer", "reader", "player", "worker",
    "leader", "member", "neighbor", "stranger", "engineer", "artist", "scientist", "customer",
    "manager", "author", "pilot", "cook", "baker", "nurse", "guest", "visitor", "traveler", "world",
    "country", "city", "town", "village", "house", "home", "room", "kitchen", "garden", "street",
    "road", "bridge", "river", "lake", "sea", "ocean", "island", "mountain", "hill", "valley",
    "forest", "tree", "flower", "field", "farm", "market", "shop", "school", "office", "library",
    "museum", "hospital", "station", "airport", "harbor", "church", "castle", "tower", "wall",
    "door", "window", "floor", "roof", "table", "chair", "bed", "lamp", "clock", "mirror",
    "picture", "book", "page", "letter", "word", "story", "song", "poem", "name", "question",
    "answer", "idea", "thought", "plan", "problem", "reason", "result", "example", "fact", "truth",
    "secret", "dream", "memory", "moment", "chance", "choice", "change", "rule", "law", "game",
    "team", "group", "company", "price", "cost", "money", "coin", "bank", "job", "work", "project",
    "system", "program", "computer", "machine", "engine", "car", "bus", "train", "ship", "boat",
    "plane", "bicycle", "wheel", "phone", "screen", "message", "network", "server", "model",
    "number", "list", "water", "fire", "air", "earth", "stone", "sand", "wood", "metal", "glass",
    "paper", "bread", "cheese", "apple", "orange", "potato", "tomato", "egg", "fish:fish", "bird",
    "dog", "cat", "horse", "cow", "sheep:sheep", "mouse:mice", "wolf:wolves", "fox", "bear",
    "rabbit", "insect", "animal", "plant", "seed", "leaf:leaves", "root", "branch", "sun", "moon",
    "star", "sky", "cloud", "rain", "snow", "wind", "storm", "weather", "season", "summer",
    "winter", "spring", "autumn", "light", "shadow", "color", "sound", "voice", "music", "noise",
    "silence", "smell", "taste", "heart", "head", "hand", "face", "eye", "foot:feet", "tooth:teeth",
    "body", "mind", "life:lives", "health", "energy", "power", "force", "speed", "distance", "size",
    "shape", "line", "circle", "square", "point", "side", "edge", "corner", "center", "middle",
    "top", "bottom", "path", "journey", "trip", "map", "box", "bag", "bottle", "cup", "plate",
    "knife:knives", "key", "tool", "rope", "gift", "ticket", "card", "note", "report", "record",
    "history", "science", "art", "language", "culture", "nature", "society", "government", "party",
    "meeting", "event", "festival", "holiday", "weekend", "century", "future", "past", "present",
    "beginning", "end", "half", "piece", "part", "kind", "type", "level", "step", "stage", "test",
    "experiment", "method", "process", "effect", "cause", "sign", "signal",
];

/// Verbs: `base[:past[:gerund]]` when the rules would get them wrong.
#[rustfmt::skip]
pub(crate) const VERBS: &[&str] = &[
    "ask", "call", "help", "work", "play", "walk", "talk", "look", "watch", "listen", "open",
    "close", "start", "finish", "want", "need", "like", "love", "hate", "live", "move", "carry",
    "try", "study", "worry", "follow", "visit", "answer", "explain", "remember",
    "forget:forgot:forgetting", "learn", "teach:taught", "change", "create", "build:built", "paint",
    "draw:drew", "write:wrote", "read:read", "speak:spoke", "say:said", "tell:told", "show",
    "see:saw", "hear:heard", "feel:felt", "think:thought", "know:knew", "find:found", "lose:lost",
    "keep:kept", "leave:left", "bring:brought", "buy:bought", "sell:sold", "pay:paid", "send:sent",
    "spend:spent", "lend:lent", "make:made", "take:took", "give:gave", "get:got:getting", "go:went",
    "come:came", "run:ran:running", "swim:swam:swimming", "sit:sat:sitting", "stand:stood",
    "fall:fell", "rise:rose", "grow:grew", "throw:threw", "catch:caught", "hold:held", "meet:met",
    "win:won:winning", "begin:began:beginning", "sing:sang", "drink:drank", "eat:ate",
    "sleep:slept", "wake:woke", "drive:drove", "ride:rode", "fly:flew", "break:broke",
    "choose:chose", "stop:stopped:stopping", "plan:planned:planning", "drop:dropped:dropping",
    "cook", "clean", "wash", "fix", "mix", "pass", "push", "pull", "reach", "touch", "turn",
    "return", "travel", "arrive", "enter", "climb", "jump", "dance", "laugh", "smile", "cry",
    "wait", "hope", "wish", "believe", "decide", "agree", "allow", "offer", "order", "prepare",
    "prefer:preferred:preferring", "protect", "provide", "receive", "share", "solve", "support",
    "test", "measure", "count", "compare", "describe", "discover", "improve", "include", "increase",
    "reduce", "collect", "connect", "contain", "continue", "notice", "produce", "repeat", "replace",
    "report", "save", "search", "serve", "trust", "use", "wonder", "imagine", "invite", "join",
    "kick", "knock", "mark", "miss", "pick", "plant", "point", "pour", "print", "rest", "roll",
    "rush", "sail", "shout", "sign", "wander", "warn", "water", "whisper",
];

#[rustfmt::skip]
pub(crate) const ADJECTIVES: &[&str] = &[
    "good", "new", "old", "great", "big", "small", "little", "long", "short", "high", "low",
    "young", "early", "late", "important", "large", "different", "same", "able", "bad", "best",
    "better", "true", "whole", "free", "full", "easy", "hard", "clear", "simple", "strong", "weak",
    "quick", "slow", "fast", "bright", "dark", "warm", "cold", "hot", "cool", "dry", "wet", "soft",
    "loud", "quiet", "happy", "sad", "angry", "calm", "brave", "careful", "clever", "curious",
    "friendly", "gentle", "honest", "kind", "lucky", "proud", "polite", "rich", "poor", "busy",
    "lazy", "tired", "hungry", "famous", "strange", "common", "rare", "special", "public",
    "private", "local", "foreign", "natural", "modern", "ancient", "beautiful", "ugly", "clean",
    "dirty", "empty", "heavy", "light", "narrow", "wide", "deep", "flat", "round", "sharp",
    "smooth", "rough", "sweet", "bitter", "fresh", "green", "blue", "red", "yellow", "white",
    "black", "brown", "golden", "silver", "wooden", "distant", "nearby", "hidden", "open", "safe",
    "dangerous", "useful", "serious", "silent", "gray", "pale", "plain", "final", "main", "next",
    "last", "real", "possible", "certain", "ready", "wild", "wise", "tiny", "huge", "thin", "thick",
];

#[rustfmt::skip]
pub(crate) const ADVERBS: &[&str] = &[
    "quickly", "slowly", "carefully", "quietly", "loudly", "easily", "gently", "happily", "sadly",
    "often", "always", "never", "sometimes", "usually", "rarely", "again", "soon", "later", "today",
    "yesterday", "tomorrow", "here", "there", "everywhere", "together", "alone", "almost", "nearly",
    "really", "very", "simply", "finally", "suddenly", "probably", "certainly", "clearly",
    "exactly", "early", "still", "already",
];

#[rustfmt::skip]
pub(crate) const PREPOSITIONS: &[&str] = &[
    "in", "on", "at", "by", "with", "from", "to", "into", "over", "under", "near", "behind",
    "beside", "between", "across", "through", "around", "along", "without", "after", "before",
    "during", "toward", "inside", "outside", "above", "below", "beyond",
];

/// Singular determiners (followed by a singular noun).
#[rustfmt::skip]
pub(crate) const SINGULAR_DETERMINERS: &[&str] = &[
    "the", "a", "this", "that", "every", "each", "one", "my", "your", "his", "her", "our", "their",
    "another",
];

/// Plural determiners (followed by a plural noun).
#[rustfmt::skip]
pub(crate) const PLURAL_DETERMINERS: &[&str] = &[
    "the", "these", "those", "some", "many", "few", "several", "all", "two", "three", "our",
    "their", "most", "other",
];

/// Joins two clauses: `clause, conjunction clause`.
#[rustfmt::skip]
pub(crate) const CONJUNCTIONS: &[&str] = &[
    "and", "but", "so", "because", "while", "although", "when", "if", "until", "since", "or", "yet",
];

/// Openers for a sentence: `Opener, clause.`
#[rustfmt::skip]
pub(crate) const OPENERS: &[&str] = &[
    "However", "Meanwhile", "Later", "Afterwards", "Of course", "In fact", "Still", "Suddenly",
    "Yesterday", "Today", "Tomorrow", "At first", "In the end", "For example", "Once", "Sometimes",
    "Perhaps", "Finally", "Besides", "Even so",
];

#[rustfmt::skip]
pub(crate) const MODALS: &[&str] = &[
    "can", "could", "should", "will", "would", "might", "must",
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn lists_have_no_repeats() {
        for list in [
            NOUNS,
            VERBS,
            ADJECTIVES,
            ADVERBS,
            PREPOSITIONS,
            CONJUNCTIONS,
            OPENERS,
        ] {
            let mut seen = HashSet::new();
            for entry in list {
                let base = entry.split(':').next().unwrap();
                assert!(seen.insert(base), "{base} repeated");
                assert!(!base.is_empty() && base.is_ascii());
            }
        }
        assert!(NOUNS.len() + VERBS.len() + ADJECTIVES.len() > 500);
    }
}
