//! `GET /api/v1/stats` (SPEC 10) with known numbers: a known set of drivers, orders, one
//! incident and sessions gives exact counts; a partner sees its own orders' numbers and nothing
//! of the fleet; "today" starts at midnight of `stats.timezone`.

use crate::helpers::{spawn_app_with, TestApp, TestDb, WsClient};
use crate::on_both_backends;
use chrono::{DateTime, Duration as Span, FixedOffset, TimeZone, Utc};
use rallypoint::auth::Claims;
use rallypoint::protocol::Role;
use serde_json::{json, Value};

fn partner_token(app: &TestApp, id: &str) -> String {
    let mut c = Claims::new(&format!("shop-{id}"), Role::Partner, None, "default", 3600);
    c.partner_id = Some(id.to_string());
    app.hub.keys.sign(&c).expect("sign")
}

fn customer_token(app: &TestApp) -> String {
    let mut c = Claims::new("cust-1", Role::Customer, None, "default", 3600);
    c.customer_id = Some("C-1".into());
    app.hub.keys.sign(&c).expect("sign")
}

/// Creates `id` as `token` with `extra` merged into the body.
async fn create(app: &TestApp, token: &str, id: &str, extra: Value) {
    let mut body = json!({"id":id,"pickup":{"lat":48.8566,"lng":2.3522},
                          "dropoff":{"lat":48.8738,"lng":2.2950}});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (status, order) = app.post_json("/api/v1/orders", &body, token).await;
    assert_eq!(status, 201, "{order}");
}

/// The driver of `driver` accepts `order` and takes it to `delivered`.
async fn deliver(driver: &mut WsClient, order: &str) {
    let ack = driver
        .request(json!({"type":"accept","order_id":order}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    for status in ["picked_up", "out_for_delivery", "delivered"] {
        let ack = driver
            .request(json!({"type":"order_status","order_id":order,"status":status}))
            .await;
        assert_eq!(ack["type"], "ack", "{status}: {ack}");
    }
}

/// Sets when `order` was accepted and delivered, as the database holds it.
async fn set_times(app: &TestApp, order: &'static str, accepted: DateTime<Utc>, at: DateTime<Utc>) {
    use diesel::prelude::*;
    use rallypoint::db::schema::orders::dsl;
    rallypoint::db::run(&app.hub.pool, move |c| {
        diesel::update(dsl::orders.filter(dsl::id.eq(order)))
            .set((
                dsl::accepted_at.eq(Some(accepted.naive_utc())),
                dsl::updated_at.eq(at.naive_utc()),
            ))
            .execute(c)?;
        Ok(())
    })
    .await
    .expect("the update");
}

async fn stats(app: &TestApp, token: &str) -> Value {
    let (status, body) = app.get_json("/api/v1/stats", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn stats_count_a_known_operation_exactly_and_a_partner_sees_only_its_own(db: TestDb) {
    let app = spawn_app_with(db, |s| s.stats.timezone = "+02:00".into()).await;
    let desk = app.dispatcher_token();
    // DRV-003 is registered and never connects: offline.
    let (status, body) = app
        .post_json(
            "/api/v1/drivers",
            &json!({"id":"DRV-003","name":"Carol"}),
            &app.admin_token(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut alice = app.online_driver("DRV-001", "Alice", 48.8566, 2.3522).await;
    // O1 (partner P-1) delivered by Alice; O2 (P-2) accepted by her, which makes her busy.
    create(
        &app,
        &desk,
        "O1",
        json!({"driver_id":"DRV-001","partner_id":"P-1"}),
    )
    .await;
    alice.expect("order_assigned").await;
    deliver(&mut alice, "O1").await;
    create(
        &app,
        &desk,
        "O2",
        json!({"driver_id":"DRV-001","partner_id":"P-2"}),
    )
    .await;
    alice.expect("order_assigned").await;
    let ack = alice
        .request(json!({"type":"accept","order_id":"O2"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    // One incident, while nobody else could take the order.
    let ack = alice
        .request(json!({"type":"report","order_id":"O2","kind":"traffic_jam"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    // Bob delivers O3 (P-2); O4 waits with the offline DRV-003.
    let mut bob = app.online_driver("DRV-002", "Bob", 48.86, 2.35).await;
    create(
        &app,
        &desk,
        "O3",
        json!({"driver_id":"DRV-002","partner_id":"P-2"}),
    )
    .await;
    bob.expect("order_assigned").await;
    deliver(&mut bob, "O3").await;
    create(&app, &desk, "O4", json!({"driver_id":"DRV-003"})).await;
    // P-1 places two orders in a fleet with no drivers: one waits, one it cancels.
    let shop = partner_token(&app, "P-1");
    create(&app, &shop, "O5", json!({"fleet":"north"})).await;
    create(&app, &shop, "O6", json!({"fleet":"north"})).await;
    let (status, body) = app
        .post_json("/api/v1/orders/O6/cancel", &json!({}), &shop)
        .await;
    assert_eq!(status, 200, "{body}");
    // Known durations: O1 took 30 minutes from acceptance, O3 10.
    let now = Utc::now();
    set_times(&app, "O1", now - Span::minutes(31), now - Span::minutes(1)).await;
    set_times(&app, "O3", now - Span::minutes(11), now - Span::minutes(1)).await;
    let _desk_socket = app.ws(&desk).await;
    let _shop_socket = app.ws(&shop).await;

    let s = stats(&app, &app.admin_token()).await;
    assert_eq!(s["scope"], "all", "{s}");
    assert_eq!(
        s["orders_by_status"],
        json!({"pending":1,"assigned":2,"picked_up":0,"out_for_delivery":0,
               "delivered":2,"cancelled":1}),
        "{s}"
    );
    assert_eq!(s["deliveries_today"], 2, "{s}");
    assert_eq!(s["avg_delivery_minutes"], 20.0, "{s}");
    assert_eq!(
        s["drivers_by_status"],
        json!({"online":1,"offline":1,"busy":1}),
        "{s}"
    );
    let incidents = &s["incidents_24h"];
    assert_eq!(incidents["traffic_jam"], 1, "{s}");
    let total: i64 = incidents
        .as_object()
        .map(|m| m.values().filter_map(Value::as_i64).sum())
        .unwrap_or(0);
    assert_eq!(total, 1, "{s}");
    assert_eq!(
        s["connections_by_role"],
        json!({"admin":0,"dispatcher":1,"driver":2,"observer":0,"customer":0,"partner":1,
               "reporter":0,"operator":0,"sensor":0}),
        "{s}"
    );
    // Today began at midnight in +02:00.
    let plus2 = FixedOffset::east_opt(7200).expect("+02:00");
    let midnight = Utc::now()
        .with_timezone(&plus2)
        .date_naive()
        .and_time(Default::default());
    let start = plus2
        .from_local_datetime(&midnight)
        .single()
        .expect("one instant")
        .with_timezone(&Utc);
    assert_eq!(s["timezone"], "+02:00", "{s}");
    assert_eq!(
        s["day_start"].as_str().map(DateTime::parse_from_rfc3339),
        Some(Ok(start.fixed_offset())),
        "{s}"
    );

    // A partner: its own orders only, and no fleet, incident or connection numbers.
    let p1 = stats(&app, &shop).await;
    assert_eq!(p1["scope"], "partner", "{p1}");
    assert_eq!(
        p1["orders_by_status"],
        json!({"pending":1,"assigned":0,"picked_up":0,"out_for_delivery":0,
               "delivered":1,"cancelled":1}),
        "{p1}"
    );
    assert_eq!(p1["deliveries_today"], 1, "{p1}");
    assert_eq!(p1["avg_delivery_minutes"], 30.0, "{p1}");
    for hidden in ["drivers_by_status", "incidents_24h", "connections_by_role"] {
        assert!(p1.get(hidden).is_none(), "a partner sees {hidden}: {p1}");
    }
    let p2 = stats(&app, &partner_token(&app, "P-2")).await;
    assert_eq!(p2["orders_by_status"]["assigned"], 1, "{p2}");
    assert_eq!(p2["orders_by_status"]["delivered"], 1, "{p2}");
    assert_eq!(p2["avg_delivery_minutes"], 10.0, "{p2}");

    // Delivered before today began: no longer today's.
    set_times(
        &app,
        "O1",
        start - Span::minutes(40),
        start - Span::minutes(1),
    )
    .await;
    let s = stats(&app, &desk).await;
    assert_eq!(s["deliveries_today"], 1, "{s}");
    assert_eq!(s["avg_delivery_minutes"], 10.0, "{s}");
    assert_eq!(s["orders_by_status"]["delivered"], 2, "{s}");
    let p1 = stats(&app, &shop).await;
    assert_eq!(p1["deliveries_today"], 0, "{p1}");
    assert_eq!(p1["avg_delivery_minutes"], Value::Null, "{p1}");

    // Nobody else reads them.
    let observer = app.token_for("obs-1", Role::Observer, None);
    for token in [
        app.driver_token("DRV-001", "Alice"),
        customer_token(&app),
        observer,
    ] {
        let (status, body) = app.get_json("/api/v1/stats", Some(&token)).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "forbidden", "{body}");
    }
}
on_both_backends!(stats_count_a_known_operation_exactly_and_a_partner_sees_only_its_own);
