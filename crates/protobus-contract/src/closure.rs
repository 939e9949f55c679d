//! The closure of a file's imports (or a schema's references): every file
//! reached from the roots, each once, however many paths lead to it.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

/// A breadth-first walk over imports that queues each import name once, so
/// shared imports (diamonds) cost nothing twice and the walk is linear in
/// the files reached; the first file queued under a name keeps it. The
/// caller finds each file's own imports (in a contract, a registry's state
/// or over HTTP) and [`push`](Self::push)es them, so one walk serves
/// blocking and async callers alike.
///
/// ```
/// let imports = |file: &str| match file {
///     "order.proto" => vec!["money.proto", "customer.proto"],
///     "customer.proto" => vec!["money.proto"],
///     _ => vec![],
/// };
/// let mut walk = protobus_contract::Closure::new(10);
/// walk.push("order.proto", "order.proto").unwrap();
/// let mut reached = Vec::new();
/// while let Some(file) = walk.pop() {
///     for import in imports(file) {
///         walk.push(import, import).unwrap();
///     }
///     reached.push(file);
/// }
/// assert_eq!(reached, ["order.proto", "money.proto", "customer.proto"]);
/// ```
#[derive(Debug)]
pub struct Closure<K, N> {
    queued: HashSet<K>,
    queue: VecDeque<N>,
    max: usize,
}

/// The closure would hold more files than its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("more than {max} files are imported")]
pub struct TooManyImports {
    /// The limit.
    pub max: usize,
}

impl<K: Eq + Hash, N> Closure<K, N> {
    /// An empty walk that holds at most `max` files.
    pub fn new(max: usize) -> Self {
        Closure {
            queued: HashSet::new(),
            queue: VecDeque::new(),
            max,
        }
    }

    /// Queues `node` under its import name `key`, unless that name was
    /// queued before; returns whether it was queued.
    pub fn push(&mut self, key: K, node: N) -> Result<bool, TooManyImports> {
        if self.queued.contains(&key) {
            return Ok(false);
        }
        if self.queued.len() == self.max {
            return Err(TooManyImports { max: self.max });
        }
        self.queued.insert(key);
        self.queue.push_back(node);
        Ok(true)
    }

    /// The next file whose imports are to be pushed; `None` when every file
    /// reached has been popped.
    pub fn pop(&mut self) -> Option<N> {
        self.queue.pop_front()
    }

    /// How many files were queued so far.
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// Whether nothing was queued.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diamond_ten_levels_deep_is_walked_once_per_file() {
        // Level i has files a_i and b_i; each imports both files of level i+1:
        // 2^10 paths lead to the last level, 20 files are reached.
        let mut walk = Closure::new(100);
        walk.push((0, 'a'), (0, 'a')).unwrap();
        let mut popped = 0;
        while let Some((level, _)) = walk.pop() {
            popped += 1;
            if level < 10 {
                for side in ['a', 'b'] {
                    walk.push((level + 1, side), (level + 1, side)).unwrap();
                }
            }
        }
        assert_eq!(popped, 21);
        assert_eq!(walk.len(), 21);
    }

    #[test]
    fn the_limit_counts_files_not_paths() {
        let mut walk = Closure::new(2);
        assert!(walk.push("a", ()).unwrap());
        assert!(walk.push("b", ()).unwrap());
        assert!(!walk.push("a", ()).unwrap(), "queued before");
        assert_eq!(walk.push("c", ()), Err(TooManyImports { max: 2 }));
    }
}
