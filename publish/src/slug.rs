//! File- and DNS-safe names for images.

use crate::version::sha256_hex;

/// Longest readable part of a slug; with `-` and 8 hex digits the slug
/// stays within a 63-character DNS label.
const MAX_READABLE: usize = 40;

/// A deterministic, file- and DNS-label-safe, collision-safe name for an
/// image: the reference lower-cased with every run of other characters
/// turned into one `-` (a trailing `@digest` dropped, leading/trailing `-`
/// trimmed, at most 40 characters; `image` if nothing is left), then `-`
/// and the first 8 hex digits of sha256 of the full reference. The hash
/// keeps `a/b` and `a-b` (or two long names sharing a prefix) apart; the
/// readable part only helps humans. No slug contains `/` or `..`, so an
/// image name cannot escape the publication root.
pub fn image_slug(image: &str) -> String {
    let readable_src = match image.find('@') {
        Some(i) if i > 0 => &image[..i],
        _ => image,
    };
    let mut readable = String::new();
    for c in readable_src.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            readable.push(c);
        } else if !readable.is_empty() && !readable.ends_with('-') {
            readable.push('-');
        }
    }
    readable.truncate(MAX_READABLE);
    let readable = readable.trim_matches('-');
    let readable = if readable.is_empty() {
        "image"
    } else {
        readable
    };
    format!("{readable}-{}", &sha256_hex(image.as_bytes())[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn safe(s: &str) -> bool {
        s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    }

    #[test]
    fn examples() {
        let h = |s: &str| sha256_hex(s.as_bytes())[..8].to_string();
        assert_eq!(
            image_slug("nginx:1.25"),
            format!("nginx-1-25-{}", h("nginx:1.25"))
        );
        let reg = "registry.example.com:5000/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            image_slug(reg),
            format!("registry-example-com-5000-team-app-{}", h(reg))
        );
        assert_eq!(image_slug("../../etc"), format!("etc-{}", h("../../etc")));
        assert_eq!(image_slug("///"), format!("image-{}", h("///")));
        assert_eq!(image_slug(""), format!("image-{}", h("")));
        for s in [
            "nginx:1.25",
            reg,
            "../../etc",
            "///",
            "",
            "UPPER/Case_x",
            &"a".repeat(300),
        ] {
            assert!(safe(&image_slug(s)), "{s:?} -> {}", image_slug(s));
            assert_eq!(image_slug(s), image_slug(s));
        }
    }

    #[test]
    fn similar_names_differ() {
        assert_ne!(image_slug("a/b"), image_slug("a-b"));
        assert_ne!(image_slug("Nginx"), image_slug("nginx"));
        let long = "x".repeat(60);
        assert_ne!(
            image_slug(&format!("{long}1")),
            image_slug(&format!("{long}2"))
        );
    }
}
