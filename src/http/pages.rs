//! The browser pages and the JavaScript client, built into the binary (`web/`): the driver console
//! at `/` and `/driver`, the dispatcher dashboard at `/dispatch`, the customer's tracking page at
//! `/track/{order_id}`, the emergency units' pages (SPEC 9: the reporter's form at
//! `/emergency/report`, the authorities' dashboard at `/emergency`, the units map at
//! `/emergency/units`), the crowd operator page at `/ops/{event_id}` (SPEC 8), and
//! `rallypoint.js` at `/client/rallypoint.js`. Nothing is fetched from elsewhere, so the pages work
//! with no internet.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

/// One embedded file: where it is served, its text and its content type.
struct Asset {
    path: &'static str,
    body: &'static str,
    content_type: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

macro_rules! asset {
    ($path:literal, $file:literal, $type:expr) => {
        Asset {
            path: $path,
            body: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $file)),
            content_type: $type,
        }
    };
}

/// Every file served here. The pages load their scripts and styles from these paths only.
const ASSETS: [Asset; 26] = [
    asset!("/", "driver.html", HTML),
    asset!("/driver", "driver.html", HTML),
    asset!("/dispatch", "dispatch.html", HTML),
    asset!("/track", "track.html", HTML),
    asset!("/client/rallypoint.js", "rallypoint.js", JS),
    asset!("/assets/driver.js", "driver.js", JS),
    asset!("/assets/dispatch.js", "dispatch.js", JS),
    asset!("/assets/track.js", "track.js", JS),
    asset!("/assets/hold.js", "hold.js", JS),
    asset!("/assets/sos-alerts.js", "sos-alerts.js", JS),
    asset!("/assets/replay.js", "replay.js", JS),
    asset!("/assets/common.js", "common.js", JS),
    asset!("/emergency", "emergency.html", HTML),
    asset!("/emergency/report", "emergency-report.html", HTML),
    asset!("/emergency/units", "emergency-units.html", HTML),
    asset!("/assets/emergency.js", "emergency.js", JS),
    asset!("/assets/emergency-report.js", "emergency-report.js", JS),
    asset!("/assets/emergency-units.js", "emergency-units.js", JS),
    asset!("/assets/emergency-state.js", "emergency-state.js", JS),
    asset!("/assets/emergency-words.js", "emergency-words.js", JS),
    asset!("/assets/unit-emergency.js", "unit-emergency.js", JS),
    asset!("/assets/style.css", "style.css", CSS),
    asset!("/ops", "ops.html", HTML),
    asset!("/assets/ops.js", "ops.js", JS),
    asset!("/assets/ops-map.js", "ops-map.js", JS),
    asset!("/assets/ops.css", "ops.css", CSS),
];

fn lookup(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    for asset in &ASSETS {
        cfg.route(asset.path, web::get().to(serve));
    }
    // One page for every order: it reads the order id from its own path.
    cfg.route("/track/{order_id}", web::get().to(track));
    // One operator page for every crowd event (SPEC 8): it reads the event id from its path.
    cfg.route("/ops/{event_id}", web::get().to(ops));
    cfg.route(
        "/favicon.ico",
        web::get().to(|| async { HttpResponse::NoContent().finish() }),
    );
}

/// Serves an embedded file.
async fn serve(req: actix_web::HttpRequest) -> HttpResponse {
    match lookup(req.path()) {
        Some(a) => respond(a),
        None => HttpResponse::NotFound().finish(),
    }
}

/// `/track/{order_id}`: the tracking page, whatever the id (the page asks the API for the order
/// with its own token; an order that is not the caller's is the API's 404, not this route's).
async fn track() -> HttpResponse {
    match lookup("/track") {
        Some(a) => respond(a),
        None => HttpResponse::NotFound().finish(),
    }
}

/// `/ops/{event_id}`: the operator page, whatever the id (the page asks the API for the event
/// with its own token; an event it may not watch is the API's answer, not this route's).
async fn ops() -> HttpResponse {
    match lookup("/ops") {
        Some(a) => respond(a),
        None => HttpResponse::NotFound().finish(),
    }
}

/// An embedded file with headers that keep the pages to this origin.
fn respond(a: &Asset) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, a.content_type))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
                 style-src 'self'; script-src 'self'; base-uri 'none'; frame-ancestors 'none'",
        ))
        .body(a.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_has_a_file() {
        for a in &ASSETS {
            assert!(!a.body.is_empty(), "{} is empty", a.path);
            assert!(lookup(a.path).is_some());
        }
        assert!(lookup("/nope").is_none());
    }

    #[test]
    fn pages_load_nothing_from_elsewhere() {
        for a in &ASSETS {
            for needle in [
                "src=\"http",
                "href=\"http",
                "from 'http",
                "from \"http",
                "url(http",
                "@import",
            ] {
                assert!(
                    !a.body.contains(needle),
                    "{} loads something from elsewhere: {needle}",
                    a.path
                );
            }
        }
    }
}
