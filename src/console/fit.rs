//! Fitting the console into whatever terminal it gets (pure, no drawing): texts are kept whole
//! or left out, never cut into fragments — a cut number reads as another number. Widths are
//! terminal cells (`Span::width`), not bytes.

use ratatui::text::Span;

/// Terminal cells `s` takes.
pub fn width(s: &str) -> usize {
    Span::raw(s).width()
}

/// Which items to keep so that they fit in `room` cells with `gap` cells between kept ones:
/// the least important (highest `rank`) go first. An item of rank 0 is always kept.
pub fn keep_fitting(widths: &[usize], ranks: &[usize], gap: usize, room: usize) -> Vec<bool> {
    let mut keep = vec![true; widths.len()];
    let total = |keep: &[bool]| {
        let kept: Vec<usize> = widths
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(w, _)| *w)
            .collect();
        kept.iter().sum::<usize>() + gap * kept.len().saturating_sub(1)
    };
    let mut order: Vec<usize> = (0..widths.len()).filter(|&i| ranks[i] > 0).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(ranks[i]));
    for i in order {
        if total(&keep) <= room {
            break;
        }
        keep[i] = false;
    }
    keep
}

/// The leading `parts` that fit in `room`, joined by `gap` spaces; with `more`, the parts left
/// out are counted ("+2 more") so nothing is hidden silently.
pub fn leading(parts: &[String], gap: usize, room: usize, more: bool) -> String {
    let sep = " ".repeat(gap);
    for n in (0..=parts.len()).rev() {
        let mut kept: Vec<String> = parts[..n].to_vec();
        if more && n < parts.len() {
            kept.push(format!("+{} more", parts.len() - n));
        }
        let line = kept.join(&sep);
        if width(&line) <= room {
            return line;
        }
    }
    String::new()
}

/// `s` if it fits in `room`, else its start and "…" (for a name that cannot be left out).
pub fn ellipsize(s: &str, room: usize) -> String {
    if width(s) <= room {
        return s.to_string();
    }
    let mut out = String::new();
    for c in s.chars() {
        let mut next = out.clone();
        next.push(c);
        if width(&next) + 1 > room {
            break;
        }
        out = next;
    }
    if room > 0 {
        out.push('…');
    }
    out
}

/// `text` wrapped at word boundaries into lines of at most `room` cells (a word longer than a
/// line is split: nothing else can show it).
pub fn wrap(text: &str, room: usize) -> Vec<String> {
    let room = room.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        loop {
            let needed = if line.is_empty() {
                width(&word)
            } else {
                width(&line) + 1 + width(&word)
            };
            if needed <= room {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(&word);
                break;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A word wider than a whole line: as much as fits (at least one character).
            let mut split = 0;
            for (i, c) in word.char_indices() {
                if i > 0 && width(&word[..i + c.len_utf8()]) > room {
                    break;
                }
                split = i + c.len_utf8();
            }
            lines.push(word[..split].to_string());
            word = word[split..].to_string();
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Rows a part of the screen asks for: nothing unless it gets `min`, at most `want`.
#[derive(Clone, Copy, Debug)]
pub struct Need {
    pub min: u16,
    pub want: u16,
}

/// Rows for each need, given in order of importance: each gets what it wants of the rows left,
/// or none when that is less than its `min`. (A section can ask twice: its minimum early, more
/// rows later.)
pub fn plan(height: u16, needs: &[Need]) -> Vec<u16> {
    let mut left = height;
    needs
        .iter()
        .map(|n| {
            let rows = n.want.min(left);
            if rows < n.min || rows == 0 {
                return 0;
            }
            left -= rows;
            rows
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_important_items_are_dropped_first() {
        // Widths 10, 5, 5, 5 with one cell between: 28 cells in all.
        let w = [10, 5, 5, 5];
        let r = [0, 1, 3, 2];
        assert_eq!(keep_fitting(&w, &r, 1, 28), vec![true; 4]);
        assert_eq!(keep_fitting(&w, &r, 1, 27), vec![true, true, false, true]);
        assert_eq!(keep_fitting(&w, &r, 1, 16), vec![true, true, false, false]);
        assert_eq!(
            keep_fitting(&w, &r, 1, 3),
            vec![true, false, false, false],
            "rank 0 stays"
        );
    }

    #[test]
    fn leading_parts_are_whole_and_counted_when_left_out() {
        let parts: Vec<String> = ["p50 12.5", "p90 20.0", "p99 31.0"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            leading(&parts, 2, 40, false),
            "p50 12.5  p90 20.0  p99 31.0"
        );
        assert_eq!(leading(&parts, 2, 27, false), "p50 12.5  p90 20.0");
        assert_eq!(leading(&parts, 2, 7, false), "");
        assert_eq!(leading(&parts, 2, 20, true), "p50 12.5  +2 more");
    }

    #[test]
    fn words_wrap_whole() {
        assert_eq!(
            wrap("step 2 starts: constant@10.00req/s", 16),
            vec!["step 2 starts:", "constant@10.00re", "q/s"]
        );
        assert_eq!(wrap("a bb ccc", 4), vec!["a bb", "ccc"]);
        assert_eq!(wrap("", 4), vec![""]);
        assert_eq!(ellipsize("throughput", 6), "throu…");
        assert_eq!(ellipsize("throughput", 10), "throughput");
    }

    #[test]
    fn rows_go_to_the_most_important_needs() {
        let needs = [
            Need { min: 1, want: 1 },
            Need { min: 9, want: 9 },
            Need { min: 4, want: 4 },
            Need { min: 0, want: 11 },
            Need { min: 8, want: 16 },
            Need {
                min: 0,
                want: u16::MAX,
            },
        ];
        assert_eq!(
            plan(24, &needs),
            vec![1, 9, 4, 10, 0, 0],
            "no room for the 5th"
        );
        assert_eq!(plan(40, &needs), vec![1, 9, 4, 11, 15, 0]);
        assert_eq!(
            plan(60, &needs),
            vec![1, 9, 4, 11, 16, 19],
            "the last takes the rest"
        );
        assert_eq!(plan(12, &needs), vec![1, 9, 0, 2, 0, 0]);
    }
}
