//! The one name an image's profile gets wherever a name must be file- and
//! DNS-safe: the compile output directory, the publish folder, the
//! kubelet's `localhost/sandmine/<slug>.json` and the security-profiles-
//! operator object.
//!
//! Earlier releases used two slugs with 32-bit hashes (the compiler's for
//! Kubernetes names, the publisher's for folders). Pods that run today
//! refer to those names, so for one release the compiler and the publisher
//! also write under the [`legacy`] names; `docs/UPGRADING.md` says when
//! they go.

use sha2::{Digest, Sha256};

/// Longest readable part: with `-` and 16 hex digits a slug stays within a
/// 63-character DNS-1123 label.
const MAX_READABLE: usize = 63 - 1 - HASH_HEX;
/// 16 hex digits: 64 bits of SHA-256, so that two images colliding by
/// chance needs about 2^32 images (birthday bound), not 2^16.
const HASH_HEX: usize = 16;

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// `[a-z0-9]` runs of `s`, lower-cased, joined by single `-`, at most `max`
/// characters, no leading or trailing `-`; `image` when nothing is left.
fn readable(s: &str, max: usize) -> String {
    let mut r = String::with_capacity(s.len().min(max + 1));
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            r.push(c);
        } else if !r.is_empty() && !r.ends_with('-') {
            r.push('-');
        }
    }
    r.truncate(max);
    let r = r.trim_matches('-');
    if r.is_empty() {
        "image".into()
    } else {
        r.into()
    }
}

/// The image's slug: the reference without a trailing `@digest`, made
/// readable (lower case, every run of other characters one `-`, at most 46
/// characters), then `-` and the first 16 hex digits of the SHA-256 of the
/// whole reference. The hash keeps apart what the readable part merges
/// (`a/b` and `a-b`, `Nginx` and `nginx`, long names sharing a prefix,
/// digests of one name). A slug never contains `/` or `..`, so an image name
/// cannot escape the directory it is written under.
pub fn image_slug(image: &str) -> String {
    let name = match image.find('@') {
        Some(i) if i > 0 => &image[..i],
        _ => image,
    };
    let hash = hex(&Sha256::digest(image.as_bytes()));
    format!("{}-{}", readable(name, MAX_READABLE), &hash[..HASH_HEX])
}

/// The names earlier releases gave an image, still written for one release
/// where they differ from [`image_slug`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Legacy {
    /// The compiler's: the kubelet file `sandmine/<name>.json` and the SPO
    /// object's name (the whole reference, 54 readable characters, 8 hex).
    pub kubernetes: String,
    /// The publisher's: publish folders and `compile -o` directories (no
    /// `@digest`, 40 readable characters, 8 hex).
    pub folder: String,
}

/// The [`Legacy`] names of an image.
pub fn legacy(image: &str) -> Legacy {
    let hash = hex(&Sha256::digest(image.as_bytes()));
    // The compiler's old rule, as it was: runs of other characters become
    // one `-` (leading ones too), trimmed, then cut to 54 characters.
    let mut k = String::with_capacity(image.len());
    for ch in image.chars() {
        let c = ch.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            k.push(c);
        } else if !k.ends_with('-') {
            k.push('-');
        }
    }
    let mut k: String = k.trim_matches('-').chars().take(54).collect();
    while k.ends_with('-') {
        k.pop();
    }
    if k.is_empty() {
        k.push_str("image");
    }
    let folder_name = match image.find('@') {
        Some(i) if i > 0 => &image[..i],
        _ => image,
    };
    Legacy {
        kubernetes: format!("{k}-{}", &hash[..8]),
        folder: format!("{}-{}", readable(folder_name, 40), &hash[..8]),
    }
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

    fn h(s: &str) -> String {
        hex(&Sha256::digest(s.as_bytes()))
    }

    #[test]
    fn examples() {
        assert_eq!(
            image_slug("nginx:1.25"),
            format!("nginx-1-25-{}", &h("nginx:1.25")[..16])
        );
        let reg = "registry.example.com:5000/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            image_slug(reg),
            format!("registry-example-com-5000-team-app-{}", &h(reg)[..16])
        );
        assert_eq!(
            image_slug("../../etc"),
            format!("etc-{}", &h("../../etc")[..16])
        );
        assert_eq!(image_slug("///"), format!("image-{}", &h("///")[..16]));
        assert_eq!(image_slug(""), format!("image-{}", &h("")[..16]));
        for s in [
            "nginx:1.25",
            reg,
            "../../etc",
            "///",
            "",
            "UPPER/Case_x",
            "é",
            &"a".repeat(300),
        ] {
            assert!(safe(&image_slug(s)), "{s:?} -> {}", image_slug(s));
            let l = legacy(s);
            assert!(safe(&l.kubernetes) && safe(&l.folder), "{s:?} -> {l:?}");
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
        assert_ne!(image_slug("a@sha256:1"), image_slug("a@sha256:2"));
    }

    /// The legacy names are byte for byte what the two old functions gave
    /// (values computed by the release before this one).
    #[test]
    fn legacy_names_are_the_old_ones() {
        let l = legacy("docker.io/library/Nginx:1.25@sha256:abc");
        assert_eq!(
            l.kubernetes,
            format!(
                "docker-io-library-nginx-1-25-sha256-abc-{}",
                &h("docker.io/library/Nginx:1.25@sha256:abc")[..8]
            )
        );
        assert_eq!(
            l.folder,
            format!(
                "docker-io-library-nginx-1-25-{}",
                &h("docker.io/library/Nginx:1.25@sha256:abc")[..8]
            )
        );
        assert_eq!(legacy(&"x".repeat(300)).kubernetes.len(), 63);
        assert!(legacy("///").kubernetes.starts_with("image-"));
    }
}
