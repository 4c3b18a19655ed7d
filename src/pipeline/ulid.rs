//! ULIDs (26 characters of Crockford base32: 48 bits of milliseconds, 80 random bits), as
//! Woodpecker uses for step uuids (upper case) and the workflow volume prefix (lower case).
//! Pure apart from reading the clock and the system RNG.

use ring::rand::{SecureRandom, SystemRandom};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new ULID, upper case, for the current time.
pub fn new() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut random = [0u8; 10];
    // The system RNG failing is not something a CI agent can recover from sensibly; fall back
    // to the clock's nanoseconds so names stay unique within a process.
    if SystemRandom::new().fill(&mut random).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        random.copy_from_slice(&nanos.to_be_bytes()[6..16]);
    }
    encode(millis, random)
}

/// Encodes a timestamp and 80 random bits.
pub fn encode(millis: u64, random: [u8; 10]) -> String {
    let mut value: u128 = u128::from(millis & 0xFFFF_FFFF_FFFF) << 80;
    for (i, b) in random.iter().enumerate() {
        value |= u128::from(*b) << (8 * (9 - i));
    }
    (0..26)
        .map(|i| {
            let shift = 5 * (25 - i);
            ALPHABET[((value >> shift) & 0x1F) as usize] as char
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_known_values() {
        assert_eq!(encode(0, [0; 10]), "00000000000000000000000000");
        assert_eq!(encode(0xFFFF_FFFF_FFFF, [0xFF; 10]), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
        // The reference example of the ULID spec: 1469918176385 ms -> "01ARYZ6S41".
        assert_eq!(&encode(1_469_918_176_385, [0; 10])[..10], "01ARYZ6S41");
    }

    #[test]
    fn new_ids_differ_and_sort_by_time() {
        let a = new();
        let b = new();
        assert_eq!(a.len(), 26);
        assert_ne!(a, b);
        assert!(a[..10] <= b[..10]);
    }
}
