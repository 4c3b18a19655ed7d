//! The exec writer's text buffer: lines are copied in after their prefix without a `memcpy`
//! call for each short piece. musl's `memcpy` (the shipped static build) moves an unaligned
//! head and tail one byte at a time and starts a `rep movsq` even for a few bytes; for lines of
//! about 100 bytes after a prefix of a few, those calls were a third of the writer's time
//! (README, "Round of 2026-12-03, sixth session"). Short pieces are copied here as a few
//! fixed-size moves that overlap where the length is not a multiple of their size.

/// Bytes to write, `len()` of them, in a buffer that is initialised once and reused (so
/// nothing is zeroed per line).
#[derive(Debug, Default)]
pub struct Text {
    buf: Vec<u8>,
    used: usize,
}

impl Text {
    pub fn len(&self) -> usize {
        self.used
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.used]
    }

    pub fn clear(&mut self) {
        self.used = 0;
    }

    /// Drops what is written from `len` on.
    pub fn truncate(&mut self, len: usize) {
        self.used = self.used.min(len);
    }

    /// Releases memory beyond `cap` bytes (after an unusually large batch).
    pub fn shrink_to(&mut self, cap: usize) {
        if self.buf.len() > cap {
            self.buf.truncate(cap.max(self.used));
            self.buf.shrink_to_fit();
        }
    }

    /// Makes room for `more` bytes after what is written.
    fn reserve(&mut self, more: usize) {
        let need = self.used + more;
        if need > self.buf.len() {
            self.buf.resize(need.next_power_of_two(), 0);
        }
    }

    /// Appends `bytes`.
    pub fn put(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        let end = self.used + bytes.len();
        copy(&mut self.buf[self.used..end], bytes);
        self.used = end;
    }

    /// Appends `prefix`, `data` and a newline.
    pub fn put_line(&mut self, prefix: &[u8], data: &[u8]) {
        self.reserve(prefix.len() + data.len() + 1);
        let mut at = self.used;
        for piece in [prefix, data] {
            copy(&mut self.buf[at..at + piece.len()], piece);
            at += piece.len();
        }
        self.buf[at] = b'\n';
        self.used = at + 1;
    }
}

/// `dst.copy_from_slice(src)` as fixed-size moves up to 128 bytes: two moves of the largest
/// power of two that fits (`N <= n <= 2N`, overlapping in the middle), four from 65 bytes on.
#[inline(always)]
fn copy(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    assert_eq!(dst.len(), n, "copy between slices of one length");
    let (d, s) = (dst.as_mut_ptr(), src.as_ptr());
    // SAFETY: `d` and `s` are valid for `n` bytes (the assert above) and every move below
    // stays within `0..n`: each arm's offsets plus its size are at most `n`.
    unsafe {
        match n {
            0 => {}
            1..=3 => {
                mv::<1>(d, s, 0);
                mv::<1>(d, s, n / 2);
                mv::<1>(d, s, n - 1);
            }
            4..=7 => ends::<4>(d, s, n),
            8..=15 => ends::<8>(d, s, n),
            16..=32 => ends::<16>(d, s, n),
            33..=64 => ends::<32>(d, s, n),
            65..=128 => {
                ends::<32>(d, s, 64);
                ends::<32>(d.add(n - 64), s.add(n - 64), 64);
            }
            _ => dst.copy_from_slice(src),
        }
    }
}

/// Moves bytes `..N` and `n - N..n` (so all of `..n` when `N <= n <= 2N`).
///
/// # Safety
/// `d` and `s` are valid for `n >= N` bytes.
#[inline(always)]
unsafe fn ends<const N: usize>(d: *mut u8, s: *const u8, n: usize) {
    // SAFETY: the caller's.
    unsafe {
        mv::<N>(d, s, 0);
        mv::<N>(d, s, n - N);
    }
}

/// Moves `N` bytes at offset `at`.
///
/// # Safety
/// `d` and `s` are valid for `at + N` bytes.
#[inline(always)]
unsafe fn mv<const N: usize>(d: *mut u8, s: *const u8, at: usize) {
    // SAFETY: the caller's; unaligned reads and writes of a byte array.
    unsafe {
        let v = s.add(at).cast::<[u8; N]>().read_unaligned();
        d.add(at).cast::<[u8; N]>().write_unaligned(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_is_copied_whole_and_nothing_around_it_is_touched() {
        let src: Vec<u8> = (0..300u32).map(|i| (i * 7 + 1) as u8).collect();
        for n in 0..=300 {
            let mut dst = vec![0xAA; n + 2];
            copy(&mut dst[1..n + 1], &src[..n]);
            assert_eq!(&dst[1..n + 1], &src[..n], "length {n}");
            assert_eq!((dst[0], dst[n + 1]), (0xAA, 0xAA), "length {n} wrote outside");
        }
    }

    #[test]
    fn lines_follow_one_another_and_the_buffer_is_reused() {
        let mut t = Text::default();
        t.put_line(b"[a] ", b"one");
        t.put(b"note\n");
        t.put_line(b"[b] ", &[b'x'; 200]);
        let expected = [&b"[a] one\nnote\n[b] "[..], &[b'x'; 200], b"\n"].concat();
        assert_eq!(t.as_slice(), &expected[..]);
        t.truncate(8);
        assert_eq!(t.as_slice(), b"[a] one\n");
        let cap = t.buf.len();
        t.clear();
        t.put_line(b"", b"again");
        assert_eq!(t.as_slice(), b"again\n");
        assert_eq!(t.buf.len(), cap, "reused, not grown");
        t.shrink_to(4);
        assert_eq!(t.as_slice(), b"again\n", "what is written stays");
    }
}
