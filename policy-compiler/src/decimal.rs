//! Fixed-precision decimal formatting of `f64`, byte for byte what
//! `format!("{x:.p$}")` prints, without `core::fmt`'s exact (Dragon4)
//! fallback: the reports print a few hundred shares per image with `{:.4}`,
//! and many of them took the slow path.
//!
//! Exact: `x = m * 2^e`, so `x * 10^p = m * 10^p * 2^e` is computed in
//! 128-bit integers and rounded half to even, as `core::fmt` rounds.
//! Values outside the fast range (negative, not finite, >= 2^53) go through
//! `core::fmt`.

use std::fmt::Write as _;

const POW10: [u64; 5] = [1, 10, 100, 1_000, 10_000];

/// Append `x` with `prec` (at most 4) decimals, as `{x:.prec$}` would.
pub fn push_fixed(out: &mut String, x: f64, prec: usize) {
    let Some(n) = scaled(x, prec) else {
        let _ = write!(out, "{x:.prec$}");
        return;
    };
    let scale = POW10[prec];
    let (int, frac) = (n / scale, n % scale);
    let mut buf = itoa_u64(int);
    out.push_str(buf.as_str());
    if prec > 0 {
        out.push('.');
        buf = itoa_u64(frac);
        for _ in buf.as_str().len()..prec {
            out.push('0');
        }
        out.push_str(buf.as_str());
    }
}

/// `x` with `prec` decimals as a new string.
pub fn fixed(x: f64, prec: usize) -> String {
    let mut s = String::with_capacity(24);
    push_fixed(&mut s, x, prec);
    s
}

/// `round_half_even(x * 10^prec)`, or `None` outside the fast range.
fn scaled(x: f64, prec: usize) -> Option<u64> {
    if prec >= POW10.len() || !x.is_finite() || x.is_sign_negative() || x >= 9.0e15 {
        return None;
    }
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    // x = m * 2^e
    let (m, e) = if exp == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), exp - 1075)
    };
    let prod = u128::from(m) * u128::from(POW10[prec]);
    if e >= 0 {
        // x < 9e15 < 2^53 keeps e small; the product fits u128 and u64.
        return u64::try_from(prod << e).ok();
    }
    let k = (-e) as u32;
    if k >= 127 {
        // x * 10^p < 2^67 / 2^127: rounds to 0.
        return Some(0);
    }
    let q = prod >> k;
    let r = prod & ((1u128 << k) - 1);
    let half = 1u128 << (k - 1);
    let q = if r > half || (r == half && q & 1 == 1) {
        q + 1
    } else {
        q
    };
    u64::try_from(q).ok()
}

/// Decimal digits of `v` on the stack.
struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_str(&self) -> &str {
        // Only ASCII digits are written.
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or("")
    }
}

fn itoa_u64(mut v: u64) -> Digits {
    let mut d = Digits {
        buf: [0; 20],
        start: 20,
    };
    loop {
        d.start -= 1;
        d.buf[d.start] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixed;

    fn check(x: f64) {
        for p in 0..=4 {
            assert_eq!(fixed(x, p), format!("{x:.p$}"), "{x:e} with {p} decimals");
        }
    }

    #[test]
    fn same_bytes_as_core_fmt() {
        // Exact ties (round half to even), shares k/n, hours, edge values.
        for x in [
            0.0,
            -0.0,
            0.5,
            1.5,
            2.5,
            0.25,
            0.75,
            0.125,
            0.03125,
            0.09375,
            1.125,
            0.00005,
            0.00015,
            0.99995,
            0.999_949_999,
            9.5,
            1e-300,
            5e-324,
            1e15,
            8.9e15,
            9.1e15,
            1e300,
            -1.5,
            -0.00001,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            check(x);
        }
        for n in 1..=600u32 {
            for k in 0..=n {
                check(f64::from(k) / f64::from(n));
            }
        }
        // Pseudo-random doubles over many magnitudes.
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let x = f64::from_bits(s >> 2);
            check(x);
            check((s % 100_000_000) as f64 / 3_600_000.0);
        }
    }
}
