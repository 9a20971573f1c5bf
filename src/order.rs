//! Sorting by a text key, the order Go's `sort.Strings` and its map iteration give.
//!
//! Every sort by key in the policy goes through [`sorted_by_key`]: each `sort_by` over a new
//! element type or closure compiles to another copy of the standard sort, 3 to 12 KB of
//! WebAssembly each, and the module's size has a budget (README, Performance). Here one sort
//! over `(key, position)` pairs serves them all.

/// `items` in the order of their keys, equal keys kept in the order they came (stable).
pub fn sorted_by_key<T>(items: Vec<T>, key: impl Fn(&T) -> &str) -> Vec<T> {
    let order = order_of(items.iter().map(key).collect());
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// The positions of `keys` in sorted order.
pub fn order_of(keys: Vec<&str>) -> Vec<usize> {
    let mut pairs: Vec<(&str, usize)> = keys.into_iter().zip(0..).collect();
    // Ties fall back to the position: stable without the stable sort's larger code.
    pairs.sort_unstable();
    pairs.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_out_in_key_order() {
        let items = vec![("b", 1), ("c", 2), ("a", 3)];
        assert_eq!(
            sorted_by_key(items, |i| i.0),
            vec![("a", 3), ("b", 1), ("c", 2)]
        );
    }

    #[test]
    fn equal_keys_keep_the_order_they_came_in() {
        let items = vec![("k", 1), ("a", 0), ("k", 2), ("k", 3)];
        assert_eq!(
            sorted_by_key(items, |i| i.0),
            vec![("a", 0), ("k", 1), ("k", 2), ("k", 3)]
        );
    }

    #[test]
    fn keys_sort_by_bytes_as_go_does() {
        // Go compares strings byte by byte: upper case before lower, "é" after "z".
        let items = vec!["é", "z", "Z", "a", ""];
        assert_eq!(sorted_by_key(items, |s| s), vec!["", "Z", "a", "z", "é"]);
    }

    #[test]
    fn order_of_gives_the_positions() {
        assert_eq!(order_of(vec!["b", "a", "b"]), vec![1, 0, 2]);
        assert!(order_of(Vec::new()).is_empty());
    }
}
