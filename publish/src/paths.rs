//! Which relative paths a candidate's files may have.

/// True when `rel` is a plain relative path: non-empty parts separated by
/// `/`, none of them `.` or `..`, no backslash or NUL.
pub(crate) fn is_plain_relative(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.contains('\\')
        && !rel.contains('\0')
        && rel
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative() {
        for ok in ["profile.json", "kubelet/sandmine/x.json", "a..b"] {
            assert!(is_plain_relative(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a/",
            "a\\b",
        ] {
            assert!(!is_plain_relative(bad), "{bad}");
        }
    }
}
