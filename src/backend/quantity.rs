//! Kubernetes resource quantities (`128Mi`, `500m`, `10G`, `1e3`): parsing and the canonical
//! form apimachinery serialises, so our objects match Woodpecker's byte for byte. The value is
//! kept exact as `digits × 10^exp`; knows nothing of pods.

use std::fmt;

/// How a quantity was written; the canonical form keeps the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain numbers and `n u m k M G T P E`.
    DecimalSi,
    /// `Ki Mi Gi Ti Pi Ei`.
    BinarySi,
    /// `e`/`E` notation.
    DecimalExponent,
}

/// A parsed quantity: `mantissa × 10^exp`, exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    mantissa: i128,
    exp: i32,
    format: Format,
}

/// Why a quantity does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityError {
    pub input: String,
    pub reason: &'static str,
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid quantity {:?}: {}", self.input, self.reason)
    }
}
impl std::error::Error for QuantityError {}

const DEC_SUFFIXES: [(&str, i32); 10] = [
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("", 0),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];
const BIN_SUFFIXES: [(&str, u32); 6] = [("Ki", 10), ("Mi", 20), ("Gi", 30), ("Ti", 40), ("Pi", 50), ("Ei", 60)];

impl Quantity {
    pub fn parse(input: &str) -> Result<Quantity, QuantityError> {
        let err = |reason| QuantityError {
            input: input.to_string(),
            reason,
        };
        let s = input;
        if s.is_empty() {
            return Err(err("empty"));
        }
        let (neg, rest) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(num_end);
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err("no digits"));
        }
        if frac_part.contains('.') {
            return Err(err("more than one decimal point"));
        }
        let mut mantissa: i128 = 0;
        for d in int_part.bytes().chain(frac_part.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(d - b'0')))
                .ok_or_else(|| err("too many digits"))?;
        }
        let mut exp = -(frac_part.len() as i32);
        let format;
        if let Some(&(_, shift)) = BIN_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
            format = Format::BinarySi;
            let factor = 1i128.checked_shl(shift).ok_or_else(|| err("too large"))?;
            mantissa = mantissa.checked_mul(factor).ok_or_else(|| err("too large"))?;
        } else if let Some(&(_, e)) = DEC_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
            format = Format::DecimalSi;
            exp += e;
        } else if let Some(e) = suffix.strip_prefix(['e', 'E']) {
            format = Format::DecimalExponent;
            let e: i32 = e.parse().map_err(|_| err("bad exponent"))?;
            if !(-100..=100).contains(&e) {
                return Err(err("exponent out of range"));
            }
            exp += e;
        } else {
            return Err(err(
                "unknown suffix (want n, u, m, k, M, G, T, P, E, Ki..Ei or an exponent)",
            ));
        }
        if neg {
            mantissa = -mantissa;
        }
        let mut q = Quantity { mantissa, exp, format };
        q.normalise();
        q.round_up_to_nano();
        Ok(q)
    }

    /// Strips trailing zeros of the mantissa into the exponent.
    fn normalise(&mut self) {
        if self.mantissa == 0 {
            self.exp = 0;
            return;
        }
        while self.mantissa % 10 == 0 {
            self.mantissa /= 10;
            self.exp += 1;
        }
    }

    /// apimachinery rounds every quantity up (away from zero) to nano precision.
    fn round_up_to_nano(&mut self) {
        if self.exp >= -9 {
            return;
        }
        let drop = (-9 - self.exp) as u32;
        let div = 10i128.checked_pow(drop);
        self.mantissa = match div {
            Some(div) => {
                let q = self.mantissa / div;
                if self.mantissa % div != 0 {
                    q + self.mantissa.signum()
                } else {
                    q
                }
            }
            None => self.mantissa.signum(),
        };
        self.exp = -9;
        self.normalise();
    }

    /// The exact integer value, if it is one and fits.
    fn as_integer(&self) -> Option<i128> {
        if self.exp < 0 {
            return None;
        }
        10i128
            .checked_pow(self.exp as u32)
            .and_then(|f| self.mantissa.checked_mul(f))
    }

    /// Compares the values (`1Gi` > `1G` > `999M`), whatever the notation.
    pub fn cmp_value(&self, other: &Quantity) -> std::cmp::Ordering {
        let exp = self.exp.min(other.exp);
        let scaled = |q: &Quantity| {
            10i128
                .checked_pow((q.exp - exp) as u32)
                .and_then(|f| q.mantissa.checked_mul(f))
        };
        match (scaled(self), scaled(other)) {
            (Some(a), Some(b)) => a.cmp(&b),
            // Too far apart to scale exactly: then the approximation cannot tie.
            _ => {
                let approx = |q: &Quantity| q.mantissa as f64 * 10f64.powi(q.exp);
                approx(self).total_cmp(&approx(other))
            }
        }
    }
}

impl fmt::Display for Quantity {
    /// The canonical form (apimachinery `CanonicalizeBytes`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mantissa == 0 {
            return f.write_str("0");
        }
        if self.format == Format::BinarySi
            && let Some(v) = self.as_integer().filter(|v| v.abs() >= 1024)
        {
            let mut n = v;
            let mut k = 0;
            while k < BIN_SUFFIXES.len() && n % 1024 == 0 {
                n /= 1024;
                k += 1;
            }
            let suffix = if k == 0 { "" } else { BIN_SUFFIXES[k - 1].0 };
            return write!(f, "{n}{suffix}");
        }
        // Decimal: the largest exponent that is a multiple of 3 and keeps the mantissa whole.
        let mut exp3 = self.exp.div_euclid(3) * 3;
        let mut n = self.mantissa * 10i128.pow((self.exp - exp3) as u32);
        while n % 1000 == 0 {
            n /= 1000;
            exp3 += 3;
        }
        if self.format == Format::DecimalExponent {
            return if exp3 == 0 {
                write!(f, "{n}")
            } else {
                write!(f, "{n}e{exp3}")
            };
        }
        match DEC_SUFFIXES.iter().find(|(_, e)| *e == exp3) {
            Some((s, _)) => write!(f, "{n}{s}"),
            None => write!(f, "{n}e{exp3}"),
        }
    }
}

#[cfg(test)]
mod compare_tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn values_compare_across_notations() {
        let q = |s: &str| Quantity::parse(s).unwrap();
        assert_eq!(q("1Gi").cmp_value(&q("1G")), Greater);
        assert_eq!(q("1000m").cmp_value(&q("1")), Equal);
        assert_eq!(q("500m").cmp_value(&q("0.5")), Equal);
        assert_eq!(q("999M").cmp_value(&q("1G")), Less);
        assert_eq!(q("1e3").cmp_value(&q("1k")), Equal);
        assert_eq!(q("1n").cmp_value(&q("1E")), Less);
        assert_eq!(q("128Mi").cmp_value(&q("134217728")), Equal);
    }
}

/// Parses and returns the canonical form.
pub fn canonical(input: &str) -> Result<String, QuantityError> {
    Quantity::parse(input).map(|q| q.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_from_the_spec() {
        for (input, want) in [
            ("1000m", "1"),
            ("1500m", "1500m"),
            ("0.5", "500m"),
            ("2", "2"),
            ("100000", "100k"),
            ("128Mi", "128Mi"),
            ("1.5Gi", "1536Mi"),
            ("10G", "10G"),
            ("1Gi", "1Gi"),
            ("0", "0"),
            ("0Gi", "0"),
            ("200Mi", "200Mi"),
            ("100m", "100m"),
            ("128", "128"),
            ("1.5Ki", "1536"),
            ("512", "512"),
            ("0.5Ki", "512"),
            ("1e3", "1e3"),
            ("1E6", "1e6"),
            ("1.5e3", "1500"),
            ("12Mi", "12Mi"),
            ("5m", "5m"),
            ("+1k", "1k"),
            ("-1500m", "-1500m"),
            ("0.0000000001", "1n"),
            ("1.", "1"),
            (".5", "500m"),
        ] {
            assert_eq!(canonical(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn bad_quantities_fail_with_a_reason() {
        for bad in ["", "abc", "1K", "1.2.3", "1Qi", "e3", "1e", "--1", "1 Gi", " 1"] {
            let e = canonical(bad).unwrap_err();
            assert_eq!(e.input, bad);
            assert!(e.to_string().contains("invalid quantity"), "{e}");
        }
    }
}
