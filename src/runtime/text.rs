//! Wording of the messages people read (pure).

/// `1 user`, `2 users`: the count with the right noun.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_are_right() {
        assert_eq!(count(1, "user", "users"), "1 user");
        assert_eq!(count(0, "file", "files"), "0 files");
        assert_eq!(count(2, "file", "files"), "2 files");
    }
}
