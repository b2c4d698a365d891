//! A trie over token ids: the shape shared by the lexicon and the hotword
//! list, both of which the beam search walks one token at a time.

use rustc_hash::FxHashMap;

/// Node 0 is the root; edges live in one hash map, so a node costs nothing
/// beyond the data its owner keeps per node.
#[derive(Debug, Clone)]
pub struct TokenTrie {
    edges: FxHashMap<(u32, u32), u32>,
    len: u32,
}

pub const ROOT: u32 = 0;

impl Default for TokenTrie {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenTrie {
    /// A trie holding only its root.
    pub fn new() -> Self {
        Self { edges: FxHashMap::default(), len: 1 }
    }

    /// Number of nodes, the root included.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn child(&self, node: u32, token: usize) -> Option<u32> {
        self.edges.get(&(node, token as u32)).copied()
    }

    /// Adds the path of `tokens`; returns the nodes along it (the root excluded).
    pub fn insert(&mut self, tokens: &[usize]) -> Vec<u32> {
        let mut node = ROOT;
        tokens
            .iter()
            .map(|&t| {
                let next = self.len;
                node = *self.edges.entry((node, t as u32)).or_insert(next);
                if node == next {
                    self.len += 1;
                }
                node
            })
            .collect()
    }
}
