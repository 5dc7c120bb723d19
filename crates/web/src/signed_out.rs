//! The page that says a browser is signed out, shown by every way of signing out.

use askama::Template;
use axum::response::Response;

use crate::error::render;

#[derive(Template)]
#[template(path = "signed_out.html")]
struct SignedOutPage<'a> {
    next_href: &'a str,
}

/// The signed-out page, its link going on to `next_href`.
pub fn page(next_href: &str) -> Response {
    render(&SignedOutPage { next_href })
}
