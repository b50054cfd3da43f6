//! The browser pages and the JavaScript client, built into the binary (`web/`): the driver console
//! at `/` and `/driver`, the dispatcher dashboard at `/dispatch`, and `rallypoint.js` at
//! `/client/rallypoint.js`. Nothing is fetched from elsewhere, so the pages work with no internet.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

/// One embedded file: its bytes and content type.
struct Asset {
    body: &'static str,
    content_type: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

macro_rules! asset {
    ($file:literal, $type:expr) => {
        Asset {
            body: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $file)),
            content_type: $type,
        }
    };
}

/// Path → file. The pages load their scripts and styles from these paths only.
fn lookup(path: &str) -> Option<Asset> {
    Some(match path {
        "/" | "/driver" => asset!("driver.html", HTML),
        "/dispatch" => asset!("dispatch.html", HTML),
        "/client/rallypoint.js" => asset!("rallypoint.js", JS),
        "/assets/driver.js" => asset!("driver.js", JS),
        "/assets/dispatch.js" => asset!("dispatch.js", JS),
        "/assets/common.js" => asset!("common.js", JS),
        "/assets/style.css" => asset!("style.css", CSS),
        _ => return None,
    })
}

/// Every path served here, for the routes and the tests.
pub const PATHS: [&str; 7] = [
    "/",
    "/driver",
    "/dispatch",
    "/client/rallypoint.js",
    "/assets/driver.js",
    "/assets/dispatch.js",
    "/assets/common.js",
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    for path in PATHS.iter().chain(["/assets/style.css"].iter()) {
        cfg.route(path, web::get().to(serve));
    }
    cfg.route(
        "/favicon.ico",
        web::get().to(|| async { HttpResponse::NoContent().finish() }),
    );
}

/// Serves an embedded file with headers that keep the pages to this origin.
async fn serve(req: actix_web::HttpRequest) -> HttpResponse {
    match lookup(req.path()) {
        Some(a) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, a.content_type))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
                 style-src 'self'; script-src 'self'; base-uri 'none'; frame-ancestors 'none'",
            ))
            .body(a.body),
        None => HttpResponse::NotFound().finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_has_a_file() {
        for p in PATHS {
            let a = lookup(p).unwrap_or_else(|| panic!("{p} has no file"));
            assert!(!a.body.is_empty(), "{p} is empty");
        }
        assert!(lookup("/assets/style.css").is_some());
        assert!(lookup("/nope").is_none());
    }

    #[test]
    fn pages_load_nothing_from_elsewhere() {
        for p in PATHS.iter().chain(["/assets/style.css"].iter()) {
            let body = lookup(p).map(|a| a.body).unwrap_or_default();
            for needle in [
                "src=\"http",
                "href=\"http",
                "from 'http",
                "from \"http",
                "url(http",
                "@import",
            ] {
                assert!(
                    !body.contains(needle),
                    "{p} loads something from elsewhere: {needle}"
                );
            }
        }
    }
}
