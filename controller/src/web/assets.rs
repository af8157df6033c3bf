//! The page's assets, embedded in the binary (no CDN, no external fonts: substations are
//! offline).

/// `(path, content type, bytes)` of every asset served.
pub(super) const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_bytes!("assets/index.html"),
    ),
    (
        "/assets/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/app.js"),
    ),
    (
        "/assets/app.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/app.css"),
    ),
];

/// Total size of the page's assets, bytes.
#[must_use]
pub fn total_bytes() -> usize {
    ASSETS.iter().map(|(_, _, b)| b.len()).sum()
}
