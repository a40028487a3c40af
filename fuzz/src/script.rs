//! The fuzzer's bytes read as a script of small choices, so that one input
//! is a sequence of operations (open a session, send this, answer that).

/// A cursor over the fuzzer's bytes; reads past the end give zeros and
/// empty strings, so every input is a whole script.
pub struct Script<'a> {
    data: &'a [u8],
}

impl<'a> Script<'a> {
    /// A script of `data`.
    pub fn new(data: &'a [u8]) -> Script<'a> {
        Script { data }
    }

    /// True once every byte was read.
    pub fn is_done(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte.
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// True one time in `n`, by the next byte.
    pub fn one_in(&mut self, n: u8) -> bool {
        self.byte().is_multiple_of(n)
    }

    /// One of `items`, by the next byte.
    pub fn pick<'b, T>(&mut self, items: &'b [T]) -> &'b T {
        &items[usize::from(self.byte()) % items.len()]
    }

    /// The next `n` bytes (fewer at the end).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// A short text: a length byte, then that many bytes read as UTF-8
    /// (invalid sequences replaced).
    pub fn text(&mut self) -> String {
        let n = usize::from(self.byte() % 48);
        String::from_utf8_lossy(self.take(n)).into_owned()
    }

    /// Everything not read yet, as UTF-8 text (invalid sequences replaced).
    pub fn rest_text(&mut self) -> String {
        let rest = self.take(self.data.len());
        String::from_utf8_lossy(rest).into_owned()
    }
}
