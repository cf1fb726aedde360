//! A bounds pass over a pickle before candle's reader (`candle_core::pickle`) runs it. That
//! reader trusts its input: a string length is allocated as written (4 GiB for a forged
//! `BINUNICODE`), memo gets clone whole objects (a few hundred bytes can describe
//! exponentially large nests — a "billion laughs"), deep nesting overflows the stack when
//! the objects are dropped, and a `LONG1` wider than 8 bytes overflows a shift. This pass
//! walks the same opcodes on a stack of sizes only, and refuses the pickle when any of
//! those would happen, so a checkpoint from the internet costs at most a small multiple of
//! its own size to read.

/// Deepest nesting of tuples / lists / dicts / calls accepted (a `state_dict` nests about 5).
const MAX_DEPTH: u32 = 256;

/// Most object nodes (plus string bytes) a pickle may build, memo copies included, relative
/// to its length: `torch.save` pickles build about one node per byte.
const MAX_NODES_PER_BYTE: u64 = 16;

#[derive(Clone, Copy)]
enum Item {
    Mark,
    Obj { nodes: u64, depth: u32 },
}

struct Walk<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Item>,
    memo: std::collections::HashMap<u32, (u64, u32)>,
    built: u64,
    budget: u64,
}

impl Walk<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "{what} of {n} bytes at byte {} runs past the end of the {}-byte pickle",
                    self.pos,
                    self.bytes.len()
                )
            })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u32_arg(&mut self) -> Result<u32, String> {
        let b = self.take(4, "an argument")?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Result<(), String> {
        let rest = &self.bytes[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("a GLOBAL name without its newline")?;
        self.pos += n + 1;
        Ok(())
    }

    /// Push an object of `nodes` nodes nested `depth` deep, of which `new` were allocated now
    /// (the others were counted when its parts were built).
    fn push(&mut self, nodes: u64, depth: u32, new: u64) -> Result<(), String> {
        self.count(new)?;
        if depth > MAX_DEPTH {
            return Err(format!("objects nest deeper than {MAX_DEPTH} levels"));
        }
        self.stack.push(Item::Obj { nodes, depth });
        Ok(())
    }

    fn count(&mut self, new: u64) -> Result<(), String> {
        self.built = self.built.saturating_add(new);
        if self.built > self.budget {
            return Err(format!(
                "it builds over {} objects (a pickle bomb?); at most {} bytes × {MAX_NODES_PER_BYTE} \
                 are accepted",
                self.budget,
                self.bytes.len()
            ));
        }
        Ok(())
    }

    fn pop(&mut self) -> Result<(u64, u32), String> {
        match self.stack.pop() {
            Some(Item::Obj { nodes, depth }) => Ok((nodes, depth)),
            _ => Err("an opcode pops an empty stack".to_string()),
        }
    }

    /// Pop to the last mark: (nodes, deepest) of the objects above it.
    fn pop_mark(&mut self) -> Result<(u64, u32), String> {
        let (mut nodes, mut depth) = (0u64, 0u32);
        loop {
            match self.stack.pop() {
                Some(Item::Mark) => return Ok((nodes, depth)),
                Some(Item::Obj { nodes: n, depth: d }) => {
                    nodes = nodes.saturating_add(n);
                    depth = depth.max(d);
                }
                None => return Err("an opcode pops to a missing MARK".to_string()),
            }
        }
    }

    /// Add popped objects into the container on top of the stack (nothing new is allocated).
    fn fill_top(&mut self, nodes: u64, depth: u32) -> Result<(), String> {
        let (n, d) = self.pop()?;
        self.push(n.saturating_add(nodes), d.max(depth.saturating_add(1)), 0)
    }
}

/// `Ok` when `bytes` is a pickle that candle's reader can run within bounded memory and stack;
/// else what is wrong with it. Opcodes candle does not know end the pass (candle refuses them).
pub fn check(bytes: &[u8]) -> Result<(), String> {
    let mut w = Walk {
        bytes,
        pos: 0,
        stack: Vec::new(),
        memo: std::collections::HashMap::new(),
        built: 0,
        budget: (bytes.len() as u64).saturating_mul(MAX_NODES_PER_BYTE) + 4096,
    };
    while w.pos < bytes.len() {
        let op = bytes[w.pos];
        w.pos += 1;
        match op {
            0x80 => drop(w.take(1, "PROTO")?),
            b'c' => {
                w.line()?;
                w.line()?;
                w.push(1, 0, 1)?;
            }
            b'K' => {
                w.take(1, "BININT1")?;
                w.push(1, 0, 1)?;
            }
            b'M' => {
                w.take(2, "BININT2")?;
                w.push(1, 0, 1)?;
            }
            b'J' => {
                w.take(4, "BININT")?;
                w.push(1, 0, 1)?;
            }
            b'G' => {
                w.take(8, "BINFLOAT")?;
                w.push(1, 0, 1)?;
            }
            b'X' => {
                let n = w.u32_arg()? as usize;
                w.take(n, "a BINUNICODE string")?;
                w.push(1 + n as u64, 0, 1 + n as u64)?;
            }
            0x8a => {
                let n = w.take(1, "LONG1")?[0] as usize;
                if n > 8 {
                    return Err(format!("a LONG1 of {n} bytes; at most 8 are supported"));
                }
                w.take(n, "LONG1")?;
                w.push(1, 0, 1)?;
            }
            // candle reads `d` as an empty dict, like `}`.
            b'N' | 0x88 | 0x89 | b')' | b']' | b'}' | b'd' => w.push(1, 0, 1)?,
            b'(' => w.stack.push(Item::Mark),
            b'Q' => {
                let (n, d) = w.pop()?;
                w.push(n.saturating_add(1), d + 1, 1)?;
            }
            b't' => {
                let (n, d) = w.pop_mark()?;
                w.push(n.saturating_add(1), d + 1, 1)?;
            }
            0x85..=0x87 => {
                let (mut n, mut d) = (1u64, 0u32);
                for _ in 0..(op - 0x84) {
                    let (a, b) = w.pop()?;
                    n = n.saturating_add(a);
                    d = d.max(b);
                }
                w.push(n, d + 1, 1)?;
            }
            b'R' | 0x81 | b'b' => {
                let (a, da) = w.pop()?;
                let (b, db) = w.pop()?;
                w.push(a.saturating_add(b).saturating_add(1), da.max(db) + 1, 1)?;
            }
            b'a' => {
                let (n, d) = w.pop()?;
                w.fill_top(n, d)?;
            }
            b's' => {
                let (a, da) = w.pop()?;
                let (b, db) = w.pop()?;
                w.fill_top(a.saturating_add(b), da.max(db))?;
            }
            b'e' | b'u' => {
                let (n, d) = w.pop_mark()?;
                w.fill_top(n, d)?;
            }
            b'h' | b'j' => {
                let id = if op == b'h' {
                    w.take(1, "BINGET")?[0] as u32
                } else {
                    w.u32_arg()?
                };
                let (n, d) = *w
                    .memo
                    .get(&id)
                    .ok_or_else(|| format!("BINGET of memo {id}, which was never put"))?;
                w.push(n, d, n)?; // candle clones the memo's object
            }
            b'q' | b'r' => {
                let id = if op == b'q' {
                    w.take(1, "BINPUT")?[0] as u32
                } else {
                    w.u32_arg()?
                };
                let Some(&Item::Obj { nodes, depth }) = w.stack.last() else {
                    return Err("BINPUT with nothing to put".to_string());
                };
                w.count(nodes)?; // candle clones the object into the memo
                w.memo.insert(id, (nodes, depth));
            }
            b'.' => return Ok(()),
            _ => return Ok(()), // unknown to candle too: it reports the opcode
        }
    }
    Ok(()) // no STOP: candle reports the truncation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_string_length_is_refused_before_allocating() {
        let mut p = vec![0x80, 2, b'X'];
        p.extend_from_slice(&u32::MAX.to_le_bytes());
        p.extend_from_slice(b"abc.");
        let e = check(&p).unwrap_err();
        assert!(
            e.contains("BINUNICODE") && e.contains("past the end"),
            "{e}"
        );
    }

    #[test]
    fn memo_copies_that_grow_exponentially_are_refused() {
        // x = (); then 40 times: put x, x = (x, x, x) through memo gets: 3^40 nodes.
        let mut p = vec![0x80, 2, b')'];
        for _ in 0..40 {
            p.extend_from_slice(&[b'q', 0, b'h', 0, b'h', 0, 0x87]);
        }
        p.push(b'.');
        let e = check(&p).unwrap_err();
        assert!(e.contains("pickle bomb"), "{e}");
    }

    #[test]
    fn deep_nesting_and_wide_longs_are_refused() {
        let mut p = vec![b')'];
        p.extend(std::iter::repeat_n(0x85, 1000));
        p.push(b'.');
        assert!(check(&p).unwrap_err().contains("nest deeper"));
        let e = check(&[0x8a, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, b'.']).unwrap_err();
        assert!(e.contains("LONG1 of 9 bytes"), "{e}");
    }

    #[test]
    fn a_small_dict_passes() {
        // {'a': 1} as pickle protocol 2.
        let p = [
            0x80, 2, b'}', b'q', 0, b'X', 1, 0, 0, 0, b'a', b'K', 1, b's', b'.',
        ];
        assert_eq!(check(&p), Ok(()));
    }
}
