//! The command layer's rules, through `run` and the session decisions, on a real engine over a
//! fresh SQLite database: who may do what, the input rules, and where each rule stands against
//! the idempotency key. The wire around them is tested in `tests/api`.

use super::session::{self, SessionCommand};
use super::*;
use crate::error::ErrorCode;
use crate::protocol::{AvailabilityStatus, DriverId, IncidentKind, LatLng, OrderId, Role, Room};
use serde_json::json;

/// A running engine (no HTTP) over a database in a folder of its own.
struct Engine {
    hub: Arc<Hub>,
    _dir: tempfile::TempDir,
}

async fn engine() -> Engine {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut settings = Settings::load(None).expect("the default settings");
    settings.database.url = dir.path().join("commands.db").display().to_string();
    settings.database.pool_size = 2;
    settings.auth.secret = "a-secret-for-the-command-layer-tests-32b".into();
    let pool = crate::db::connect(&settings.database).expect("a pool");
    crate::db::migrate(&pool).expect("migrations");
    let hub = crate::startup::start_engine(settings, pool)
        .await
        .expect("the engine");
    Engine { hub, _dir: dir }
}

fn driver(sub: &str, id: &str) -> Claims {
    Claims::new(sub, Role::Driver, Some(DriverId::from(id)), "default", 600)
}

fn staff(sub: &str, role: Role) -> Claims {
    Claims::new(sub, role, None, "default", 600)
}

/// Runs `command` as `claims` with `key`; answers the error's code and message.
async fn refused(
    e: &Engine,
    claims: &Claims,
    command: Command,
    key: Option<&str>,
) -> (ErrorCode, String) {
    let key = Ok(key.map(String::from));
    match run(e.hub.clone(), claims.clone(), command, key).await {
        Ok(a) => panic!("expected a refusal, got {:?}", a.value),
        Err(err) => (err.code(), err.client_message()),
    }
}

fn delay(order: &str, named: Option<&str>) -> Command {
    Command::ReportDelay(report::ReportDelay {
        order_id: OrderId::from(order),
        driver_id: named.map(DriverId::from),
        kind: IncidentKind::Accident,
        comment: None,
    })
}

#[actix_web::test]
async fn a_driver_reporting_as_another_driver_is_refused_before_its_key_is_claimed() {
    let e = engine().await;
    let me = driver("u1", "D1");
    let (code, message) = refused(&e, &me, delay("ORD-1", Some("D2")), Some("k1")).await;
    assert_eq!(code, ErrorCode::Forbidden);
    assert_eq!(message, "a driver reports only as itself");
    // The key was not used up by the refusal: the same key now runs the work (no such order).
    let (code, message) = refused(&e, &me, delay("ORD-1", Some("D1")), Some("k1")).await;
    assert_eq!(code, ErrorCode::NotFound, "{message}");
}

#[actix_web::test]
async fn an_observer_may_not_report_and_over_a_socket_the_refusal_is_the_keys_answer() {
    let e = engine().await;
    let report = Command::Report(report::Report {
        order_id: OrderId::from("ORD-1"),
        kind: IncidentKind::Medical,
        comment: None,
    });
    let watcher = staff("u2", Role::Observer);
    let (code, message) = refused(&e, &watcher, report.clone(), Some("k2")).await;
    assert_eq!(code, ErrorCode::Forbidden);
    assert_eq!(message, "role `observer` may not report");
    // The socket's role check runs under the key: a repeat gets the first answer, even from a
    // token of the same sub that could report.
    let desk = staff("u2", Role::Dispatcher);
    assert_eq!(
        refused(&e, &desk, report, Some("k2")).await,
        (code, message)
    );
}

#[actix_web::test]
async fn a_driver_may_not_set_another_drivers_status_nor_staff_accept_an_order() {
    let e = engine().await;
    let status = Command::SetStatus(driver::SetStatus {
        status: AvailabilityStatus::Online,
        driver_id: Some(DriverId::from("D2")),
    });
    let (code, message) = refused(&e, &driver("u1", "D1"), status, None).await;
    assert_eq!(code, ErrorCode::Forbidden);
    assert_eq!(
        message,
        "you are driver D1: you may not set a driver's status for driver D2"
    );
    let accept = Command::Accept(orders::Accept {
        order_id: OrderId::from("ORD-1"),
    });
    let (code, message) = refused(&e, &staff("u3", Role::Dispatcher), accept, None).await;
    assert_eq!(code, ErrorCode::Forbidden);
    assert_eq!(message, "only a driver may accept an order");
}

#[actix_web::test]
async fn a_malformed_key_is_refused_after_the_commands_own_rules() {
    let e = engine().await;
    let cancel = Command::Cancel(orders::Cancel {
        order_id: OrderId::from("ORD-1"),
    });
    let bad_key = || {
        Err(AppError::bad_request(
            "Idempotency-Key must be 1 to 64 visible ASCII characters",
        ))
    };
    let by_driver = run(e.hub.clone(), driver("u1", "D1"), cancel.clone(), bad_key()).await;
    assert_eq!(by_driver.map_err(|e| e.code()), Err(ErrorCode::Forbidden));
    let by_desk = run(
        e.hub.clone(),
        staff("u3", Role::Dispatcher),
        cancel,
        bad_key(),
    )
    .await;
    assert_eq!(by_desk.map_err(|e| e.code()), Err(ErrorCode::BadRequest));
}

#[actix_web::test]
async fn a_new_driver_needs_an_admin_a_name_and_a_capacity_in_range() {
    let e = engine().await;
    let new = |name: &str, capacity| {
        Command::RegisterDriver(driver::RegisterDriver {
            id: Some("D9".into()),
            name: name.into(),
            fleet: None,
            capacity,
            unit_type: None,
        })
    };
    let admin = staff("root", Role::Admin);
    let desk = staff("u3", Role::Dispatcher);
    assert_eq!(
        refused(&e, &desk, new("Nine", None), None).await.1,
        "role `dispatcher` may not register drivers"
    );
    assert_eq!(
        refused(&e, &admin, new(" ", None), None).await.0,
        ErrorCode::BadRequest
    );
    assert_eq!(
        refused(&e, &admin, new("Nine", Some(0)), None).await.1,
        "`capacity` must be between 1 and 100"
    );
    // Registered once per key: the repeat answers the driver again, not "exists already".
    let first = run(
        e.hub.clone(),
        admin.clone(),
        new("Nine", Some(2)),
        Ok(Some("r1".into())),
    )
    .await
    .expect("registered");
    assert_eq!(first.value["id"], "D9");
    assert_eq!(first.value["capacity"], 2);
    let again = run(
        e.hub.clone(),
        admin,
        new("Nine", Some(2)),
        Ok(Some("r1".into())),
    )
    .await
    .expect("the first answer");
    assert_eq!(again, first);
    // The driver's own status, acked in the socket's shape.
    let online = Command::SetStatus(driver::SetStatus {
        status: AvailabilityStatus::Online,
        driver_id: None,
    });
    let answer = run(e.hub.clone(), driver("u9", "D9"), online, Ok(None))
        .await
        .expect("online");
    assert_eq!(answer.ack(), json!({"status": "online"}));
}

#[actix_web::test]
async fn an_order_outside_the_earth_or_with_a_long_id_is_a_bad_request() {
    let e = engine().await;
    let order = |id: Option<String>, lat| {
        Command::CreateOrder(orders::CreateOrder {
            id,
            pickup: LatLng { lat, lng: 0.0 },
            dropoff: LatLng { lat: 0.0, lng: 0.0 },
            priority: None,
            fleet: None,
            driver_id: None,
            customer_id: None,
            partner_id: None,
        })
    };
    let desk = staff("u3", Role::Dispatcher);
    assert_eq!(
        refused(&e, &desk, order(None, 91.0), None).await.0,
        ErrorCode::BadRequest
    );
    assert_eq!(
        refused(&e, &desk, order(Some("x".repeat(65)), 1.0), None)
            .await
            .1,
        "`id` must be 1 to 64 characters"
    );
    assert_eq!(
        refused(&e, &driver("u1", "D1"), order(None, 1.0), None)
            .await
            .1,
        "role `driver` may not create orders"
    );
}

#[actix_web::test]
async fn a_location_out_of_range_is_refused_by_the_command_whatever_decoded_it() {
    let e = engine().await;
    let location = Command::SendLocation(driver::SendLocation {
        lat: 91.0,
        lng: 0.0,
        speed: None,
        heading: None,
        accuracy: None,
        driver_id: None,
    });
    let (code, message) = refused(&e, &driver("u1", "D1"), location, None).await;
    assert_eq!(code, ErrorCode::BadRequest);
    assert_eq!(message, "`lat` must be between -90 and 90");
}

#[actix_web::test]
async fn a_driver_may_not_join_dispatch_nor_a_room_twice_nor_past_the_room_limit() {
    let e = engine().await;
    let me = driver("u1", "D1");
    let err = session::join(&e.hub, &me, &[], "dispatch", None)
        .await
        .expect_err("dispatch is staff's");
    assert_eq!(
        err.client_message(),
        "role `driver` may not join `dispatch`"
    );
    let own = Room::Driver(DriverId::from("D1"));
    let joined = std::slice::from_ref(&own);
    let err = session::join(&e.hub, &me, joined, "driver:D1", None)
        .await
        .expect_err("already in it");
    assert_eq!(err.code(), ErrorCode::Conflict);
    let join = session::join(&e.hub, &me, joined, "driver:D1", Some(3))
        .await
        .expect("a rejoin from a position");
    assert_eq!((join.room.clone(), join.since), (own, Some(3)));
    assert_eq!(join.ack(7), json!({"room": "driver:D1", "seq": 7}));
    let max = e.hub.settings.limits.max_rooms_per_session;
    let full: Vec<Room> = (0..max).map(|i| Room::fleet(&format!("f{i}"))).collect();
    let err = session::join(&e.hub, &me, &full, "fleet:default", None)
        .await
        .expect_err("at the limit");
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert!(err.client_message().contains("max_rooms_per_session"));
}

#[actix_web::test]
async fn a_refresh_keeps_sub_role_and_driver_and_drops_the_rooms_it_no_longer_admits() {
    let e = engine().await;
    let mut watcher = staff("o1", Role::Observer);
    watcher.rooms = Some(vec!["order:*".into(), "fleet:north".into()]);
    let joined = [Room::fleet("north"), Room::Order(OrderId::from("ORD-1"))];
    let mut narrower = watcher.clone();
    narrower.rooms = Some(vec!["order:*".into()]);
    narrower.exp += 60;
    let token = e.hub.keys.sign(&narrower).expect("signed");
    let refreshed = session::refresh(&e.hub, &watcher, &joined, &token).expect("refreshed");
    assert_eq!(refreshed.lost, vec![Room::fleet("north")]);
    assert_eq!(refreshed.ack(), json!({"exp": narrower.exp}));
    let mut promoted = watcher.clone();
    promoted.role = Role::Admin;
    let token = e.hub.keys.sign(&promoted).expect("signed");
    let err = session::refresh(&e.hub, &watcher, &joined, &token).expect_err("another role");
    assert_eq!(err.code(), ErrorCode::Forbidden);
}

#[test]
fn leaving_a_room_not_joined_is_not_found() {
    let joined = [Room::Dispatch];
    assert_eq!(
        session::leave(&joined, "dispatch").map(|l| l.ack()).ok(),
        Some(json!({"room": "dispatch"}))
    );
    let err = session::leave(&joined, "fleet:default").expect_err("not in it");
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert_eq!(err.client_message(), "you are not in room `fleet:default`");
}

#[test]
fn each_client_message_is_a_command_a_session_change_or_a_ping() {
    let decode = |text: &str| {
        Request::from(
            crate::protocol::ClientFrame::decode(text)
                .expect("a valid frame")
                .msg,
        )
    };
    assert!(matches!(decode(r#"{"type":"ping"}"#), Request::Ping));
    assert!(matches!(
        decode(r#"{"type":"leave","room":"dispatch"}"#),
        Request::Session(SessionCommand::Leave { .. })
    ));
    let shape = |text: &str| match decode(text) {
        Request::Command(c) => c.shape(),
        other => panic!("not a command: {other:?}"),
    };
    assert_eq!(
        shape(r#"{"type":"report","order_id":"O","kind":"other"}"#),
        AckShape::Event
    );
    assert_eq!(
        shape(r#"{"type":"decline","order_id":"O"}"#),
        AckShape::Declined
    );
    assert_eq!(
        shape(r#"{"type":"status","status":"online"}"#),
        AckShape::Status
    );
    assert_eq!(
        shape(r#"{"type":"location","lat":1,"lng":2}"#),
        AckShape::Plain
    );
    assert_eq!(
        shape(r#"{"type":"sos","lat":1,"lng":2,"message":"help"}"#),
        AckShape::Alert
    );
}

#[actix_web::test]
async fn bulk_orders_are_the_staffs_and_a_refusal_names_the_first_bad_order() {
    let e = engine().await;
    let one = |id: &str, lat: f64| orders::CreateOrder {
        id: Some(id.to_string()),
        pickup: LatLng { lat, lng: 0.0 },
        dropoff: LatLng { lat: 0.0, lng: 0.0 },
        priority: None,
        fleet: None,
        driver_id: None,
        customer_id: None,
        partner_id: None,
    };
    let bulk =
        |orders: Vec<orders::CreateOrder>| Command::CreateOrders(bulk::CreateOrders { orders });
    let desk = staff("u3", Role::Dispatcher);
    let mut shop = staff("shop", Role::Partner);
    shop.partner_id = Some("P-1".into());
    let (code, message) = refused(&e, &shop, bulk(vec![one("A", 1.0)]), None).await;
    assert_eq!(code, ErrorCode::Forbidden);
    assert_eq!(message, "role `partner` may not create orders in bulk");
    let (code, message) = refused(
        &e,
        &desk,
        bulk(vec![one("A", 1.0), one("B", 1.0), one("C", -90.5)]),
        None,
    )
    .await;
    assert_eq!(code, ErrorCode::BadRequest);
    assert_eq!(
        message,
        "orders[2].pickup.lat must be a latitude in [-90, 90]"
    );
    let (_, message) = refused(&e, &desk, bulk(vec![one("A", 1.0), one("A", 2.0)]), None).await;
    assert_eq!(message, "orders[1].id repeats orders[0].id \"A\"");
    let (_, message) = refused(&e, &desk, bulk(Vec::new()), None).await;
    assert_eq!(message, "`orders` must hold 1 to 1000 orders, not 0");
    // Nothing was stored by any of them.
    let stored = crate::db::run(&e.hub.pool, |c| {
        Ok(crate::db::queries::orders::list(
            c,
            &Default::default(),
            None,
            10,
        )?)
    })
    .await
    .expect("the list");
    assert!(stored.is_empty(), "{stored:?}");
}

#[test]
fn the_emergency_commands_travel_as_json_and_complete_emergency_acks_the_emergency() {
    use crate::protocol::{DriverId, EmergencyType, LatLng, Severity};
    use crate::units::commands as units;
    let all = [
        Command::CreateEmergency(units::CreateEmergency {
            kind: EmergencyType::Hazmat,
            description: "drum \"leaking\"".into(),
            severity: Severity::Critical,
            location: LatLng {
                lat: 1.5,
                lng: -2.5,
            },
        }),
        Command::DispatchEmergency(units::DispatchEmergency {
            request_id: "EMG-1".into(),
            unit_id: Some(DriverId::from("AMB-1")),
        }),
        Command::CompleteEmergency(units::CompleteEmergency {
            request_id: "EMG-1".into(),
        }),
        Command::CancelEmergency(units::CancelEmergency {
            request_id: "EMG-1".into(),
        }),
    ];
    for c in all {
        let text = serde_json::to_string(&c).expect("encodes");
        assert_eq!(
            serde_json::from_str::<Command>(&text).ok(),
            Some(c),
            "{text}"
        );
    }
    let decoded = crate::protocol::ClientFrame::decode(
        r#"{"type":"complete_emergency","request_id":"EMG-1","idempotency_key":"k"}"#,
    )
    .expect("a valid frame");
    match Request::from(decoded.msg) {
        Request::Command(c) => assert_eq!(c.shape(), AckShape::Emergency),
        other => panic!("not a command: {other:?}"),
    }
}
