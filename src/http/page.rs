//! The dashboard: one self-contained page (HTML, CSS and our own script,
//! no framework, nothing fetched from elsewhere) built into the binary. It
//! reads the JSON API every second and plays streams through Media Source
//! Extensions from `/live/{app}/{name}.mp4`.

/// The page as served at `/`.
pub const HTML: &str = concat!(
    include_str!("web/head.html"),
    "<style>\n",
    include_str!("web/dashboard.css"),
    "</style>\n",
    include_str!("web/body.html"),
    "<script>\n",
    include_str!("web/dashboard.js"),
    "</script>\n</body>\n</html>\n",
);
