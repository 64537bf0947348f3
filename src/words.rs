//! Small pieces of English shared by everything that writes sentences: a count with its noun in the right number.

/// `1 round trip`, `2 round trips`: `n` with `one` or `many`.
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn one_is_singular_and_everything_else_plural() {
        assert_eq!(count(1u32, "round trip", "round trips"), "1 round trip");
        assert_eq!(count(0u32, "message", "messages"), "0 messages");
        assert_eq!(count(3u64, "entry", "entries"), "3 entries");
    }
}
