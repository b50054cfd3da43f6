//! The actors driven through their mailboxes: the engine without HTTP, test recipients attached
//! where sessions would be, messages sent to the Dispatcher, and what each recipient got asserted.

use crate::helpers::{settings_for, TestDb};
use crate::on_both_backends;
use actix::prelude::*;
use rallypoint::actors::dispatcher::{CreateOrder, ReportIncident};
use rallypoint::actors::driver::{GetDriver, SetAvailability, UpdateLocation};
use rallypoint::actors::order::{Accept, GetOrder};
use rallypoint::actors::registry::Join;
use rallypoint::actors::{ensure_driver, Deliver, Hub};
use rallypoint::auth::Claims;
use rallypoint::protocol::*;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A test recipient standing where a session would: it records every frame it is handed.
struct Probe {
    tx: mpsc::UnboundedSender<Value>,
}

impl Actor for Probe {
    type Context = Context<Self>;
}

impl Handler<Deliver> for Probe {
    type Result = ();
    fn handle(&mut self, msg: Deliver, _: &mut Context<Self>) {
        if let Deliver::Frame(text) = msg {
            let _ = self
                .tx
                .send(serde_json::from_str(&text).expect("frames are JSON"));
        }
    }
}

/// What a probe received.
struct Inbox {
    rx: mpsc::UnboundedReceiver<Value>,
    seen: Vec<Value>,
}

impl Inbox {
    /// The first received message of type `t` (waiting for it if need be).
    async fn expect(&mut self, t: &str) -> Value {
        if let Some(i) = self.seen.iter().position(|m| m["type"] == t) {
            return self.seen.remove(i);
        }
        loop {
            let m = tokio::time::timeout(crate::helpers::WAIT, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no {t} arrived; got {:?}", self.seen))
                .expect("the probe lives");
            if m["type"] == t {
                return m;
            }
            self.seen.push(m);
        }
    }

    /// Everything received so far, without waiting.
    fn drain(&mut self) -> Vec<Value> {
        while let Ok(m) = self.rx.try_recv() {
            self.seen.push(m);
        }
        std::mem::take(&mut self.seen)
    }
}

struct Engine {
    hub: Arc<Hub>,
    _db: TestDb,
    next_session: u64,
}

impl Engine {
    async fn start(db: TestDb) -> Engine {
        let settings = settings_for(&db);
        let mut db_settings = settings.database.clone();
        db_settings.pool_size = 4;
        let pool = rallypoint::db::connect(&db_settings).unwrap();
        rallypoint::db::migrate(&pool).unwrap();
        let hub = rallypoint::startup::start_engine(settings, pool)
            .await
            .unwrap();
        Engine {
            hub,
            _db: db,
            next_session: 1000,
        }
    }

    /// A probe joined to `rooms`.
    async fn probe(&mut self, rooms: &[Room]) -> Inbox {
        let (tx, rx) = mpsc::unbounded_channel();
        let probe = Probe { tx }.start();
        self.next_session += 1;
        for room in rooms {
            self.hub
                .rooms
                .send(Join {
                    room: room.clone(),
                    session_id: SessionId(self.next_session),
                    endpoint: probe.clone().recipient().into(),
                    since: None,
                })
                .await
                .unwrap()
                .unwrap();
        }
        Inbox {
            rx,
            seen: Vec::new(),
        }
    }

    /// A driver's probe in `fleet:default` and `driver:<id>`.
    async fn driver_probe(&mut self, id: &str) -> Inbox {
        self.probe(&[Room::fleet("default"), Room::Driver(DriverId::from(id))])
            .await
    }

    /// A registered driver, online or not, at (lat, lng).
    async fn driver(&self, id: &str, online: bool, lat: f64, lng: f64) {
        let addr = ensure_driver(&self.hub, &DriverId::from(id), None, "default")
            .await
            .unwrap();
        addr.send(UpdateLocation {
            location: Location {
                lat,
                lng,
                speed: None,
                heading: None,
                timestamp: chrono::Utc::now(),
            },
        })
        .await
        .unwrap();
        if online {
            addr.send(SetAvailability {
                status: AvailabilityStatus::Online,
                answer: None,
            })
            .await
            .unwrap()
            .unwrap();
        }
        // Processed in order: the Dispatcher has the driver's state queued before what follows.
        addr.send(GetDriver).await.unwrap();
    }

    async fn go_online(&self, id: &str) {
        let addr = self.hub.driver(&DriverId::from(id)).unwrap();
        addr.send(SetAvailability {
            status: AvailabilityStatus::Online,
            answer: None,
        })
        .await
        .unwrap()
        .unwrap();
    }

    /// An order at (lat, lng), given to `driver` and accepted by it.
    async fn order(&self, id: &str, driver: &str, lat: f64, lng: f64) {
        let now = chrono::Utc::now();
        let order = Order {
            id: OrderId::from(id),
            status: OrderStatus::Pending,
            driver_id: None,
            fleet: "default".into(),
            priority: Priority::Normal,
            pickup: LatLng { lat, lng },
            dropoff: LatLng {
                lat: lat + 0.02,
                lng,
            },
            version: 1,
            accepted_at: None,
            eta: None,
            created_at: now,
            updated_at: now,
            customer_id: None,
            partner_id: None,
        };
        let o = self
            .hub
            .dispatcher
            .send(CreateOrder {
                order,
                driver: Some(DriverId::from(driver)),
                answer: None,
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(o.driver_id, Some(DriverId::from(driver)));
        self.hub
            .order(&OrderId::from(id))
            .unwrap()
            .send(Accept {
                driver_id: DriverId::from(driver),
                answer: None,
            })
            .await
            .unwrap()
            .unwrap();
    }

    fn report(&self, driver: &str, order: &str, kind: IncidentKind) -> ReportIncident {
        let claims = Claims::new(
            &driver.to_lowercase(),
            Role::Driver,
            Some(DriverId::from(driver)),
            "default",
            600,
        );
        ReportIncident {
            reporter: claims,
            order_id: OrderId::from(order),
            kind,
            comment: None,
            answer: None,
        }
    }

    /// Reports through the Dispatcher's mailbox and answers its decision.
    async fn decide(&self, driver: &str, order: &str, kind: IncidentKind) -> EmergencyEvent {
        self.hub
            .dispatcher
            .send(self.report(driver, order, kind))
            .await
            .expect("the Dispatcher answers")
            .expect("the report is decided")
    }

    async fn holder(&self, order: &str) -> Option<DriverId> {
        match self.hub.order(&OrderId::from(order)) {
            Some(a) => a.send(GetOrder).await.unwrap().order.driver_id,
            None => None,
        }
    }
}

async fn a_high_risk_report_reassigns_to_the_nearest_online_driver(db: TestDb) {
    let mut e = Engine::start(db).await;
    let mut a = e.driver_probe("A").await;
    let mut b = e.driver_probe("B").await;
    let mut c = e.driver_probe("C").await;
    let mut desk = e.probe(&[Room::Dispatch]).await;
    e.driver("A", true, 48.85, 2.35).await;
    e.driver("B", true, 48.86, 2.35).await;
    e.driver("C", true, 48.90, 2.35).await;
    e.driver("Z", false, 48.8501, 2.35).await; // nearest of all, but offline
    e.order("O1", "A", 48.85, 2.35).await;
    let event = e.decide("A", "O1", IncidentKind::VehicleBreakdown).await;
    assert_eq!(event.action_taken, Action::ReassignmentInitiated);
    assert_eq!(event.new_driver_id, Some(DriverId::from("B")));
    assert!(event.risk_score > 0.7);
    for inbox in [&mut a, &mut b, &mut c, &mut desk] {
        let m = inbox.expect("emergency_event").await;
        assert_eq!(m["event_id"], event.event_id.0.as_str());
    }
    assert_eq!(b.expect("order_assigned").await["order_id"], "O1");
    assert_eq!(a.expect("order_unassigned").await["order_id"], "O1");
    assert!(c.drain().iter().all(|m| m["type"] != "order_assigned"));
    assert_eq!(e.holder("O1").await, Some(DriverId::from("B")));
}
on_both_backends!(a_high_risk_report_reassigns_to_the_nearest_online_driver);

async fn a_low_risk_report_maintains_and_informs_everyone(db: TestDb) {
    let mut e = Engine::start(db).await;
    let mut a = e.driver_probe("A").await;
    let mut b = e.driver_probe("B").await;
    e.driver("A", true, 48.85, 2.35).await;
    e.driver("B", true, 48.86, 2.35).await;
    e.order("O1", "A", 48.85, 2.35).await;
    let event = e.decide("A", "O1", IncidentKind::TrafficJam).await;
    assert_eq!(event.action_taken, Action::Maintain);
    assert!(event.risk_score < 0.7);
    assert_eq!(
        b.expect("emergency_event").await["action_taken"],
        "MAINTAIN"
    );
    assert_eq!(
        a.expect("emergency_event").await["action_taken"],
        "MAINTAIN"
    );
    assert!(b.drain().iter().all(|m| m["type"] != "order_assigned"));
    assert!(a.drain().iter().all(|m| m["type"] != "order_unassigned"));
    assert_eq!(e.holder("O1").await, Some(DriverId::from("A")));
}
on_both_backends!(a_low_risk_report_maintains_and_informs_everyone);

async fn with_no_driver_free_the_order_waits_and_goes_to_the_first_driver_online(db: TestDb) {
    let mut e = Engine::start(db).await;
    let mut a = e.driver_probe("A").await;
    let mut d = e.driver_probe("D").await;
    e.driver("A", true, 48.85, 2.35).await;
    e.driver("D", false, 48.95, 2.35).await;
    e.order("O1", "A", 48.85, 2.35).await;
    let event = e.decide("A", "O1", IncidentKind::Accident).await;
    assert_eq!(event.action_taken, Action::NoDriverAvailable);
    assert_eq!(event.new_driver_id, None);
    assert_eq!(a.expect("order_unassigned").await["order_id"], "O1");
    let state = e
        .hub
        .order(&OrderId::from("O1"))
        .unwrap()
        .send(GetOrder)
        .await
        .unwrap();
    assert_eq!(state.order.status, OrderStatus::Pending);
    assert_eq!(state.order.driver_id, None);
    // Alice stays online and available, but is never given back the order she reported on.
    e.go_online("D").await;
    let assigned = d.expect("order_assigned").await;
    assert_eq!(assigned["order_id"], "O1");
    assert_eq!(assigned["reason"], "dispatch");
    assert_eq!(e.holder("O1").await, Some(DriverId::from("D")));
}
on_both_backends!(with_no_driver_free_the_order_waits_and_goes_to_the_first_driver_online);

async fn three_simultaneous_reports_never_give_one_driver_two_orders(db: TestDb) {
    let e = Engine::start(db).await;
    for (i, id) in ["A", "B", "C", "X", "Y", "Z"].iter().enumerate() {
        e.driver(id, true, 48.85 + i as f64 * 0.001, 2.35).await;
    }
    e.order("O1", "A", 48.85, 2.35).await;
    e.order("O2", "B", 48.851, 2.35).await;
    e.order("O3", "C", 48.852, 2.35).await;
    let (r1, r2, r3) = tokio::join!(
        e.hub
            .dispatcher
            .send(e.report("A", "O1", IncidentKind::VehicleBreakdown)),
        e.hub
            .dispatcher
            .send(e.report("B", "O2", IncidentKind::Accident)),
        e.hub
            .dispatcher
            .send(e.report("C", "O3", IncidentKind::Medical)),
    );
    let events: Vec<EmergencyEvent> = [r1, r2, r3]
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    let mut new_drivers = Vec::new();
    for (ev, reporter) in events.iter().zip(["A", "B", "C"]) {
        assert_eq!(ev.action_taken, Action::ReassignmentInitiated);
        let to = ev.new_driver_id.clone().unwrap();
        assert_ne!(
            to,
            DriverId::from(reporter),
            "a reporter never gets its own order back"
        );
        // The database holds what the event announced.
        assert_eq!(e.holder(ev.order_id.as_str()).await, Some(to.clone()));
        new_drivers.push(to);
    }
    new_drivers.sort();
    new_drivers.dedup();
    assert_eq!(
        new_drivers.len(),
        3,
        "three orders, three different drivers: {new_drivers:?}"
    );
    let ids = ["A", "B", "C", "X", "Y", "Z"];
    let held = rallypoint::db::run(&e.hub.pool, move |c| {
        let mut counts = Vec::new();
        for id in ids {
            counts.push(rallypoint::db::queries::orders::held_by(c, id)?);
        }
        Ok(counts)
    })
    .await
    .unwrap();
    assert!(
        held.iter().all(|h| *h <= 1),
        "nobody beyond capacity 1: {held:?}"
    );
    assert_eq!(held.iter().sum::<i64>(), 3, "{held:?}");
    for id in ids {
        let d = e
            .hub
            .driver(&DriverId::from(id))
            .unwrap()
            .send(GetDriver)
            .await
            .unwrap();
        assert!(d.orders.len() <= 1, "{id} holds {:?}", d.orders);
    }
}
on_both_backends!(three_simultaneous_reports_never_give_one_driver_two_orders);

async fn a_cascade_moves_the_order_from_a_to_b_then_to_c(db: TestDb) {
    let mut e = Engine::start(db).await;
    let mut b = e.driver_probe("B").await;
    let mut c = e.driver_probe("C").await;
    e.driver("A", true, 48.85, 2.35).await;
    e.driver("B", true, 48.86, 2.35).await;
    e.driver("C", true, 48.90, 2.35).await;
    e.order("O1", "A", 48.85, 2.35).await;
    let first = e.decide("A", "O1", IncidentKind::VehicleBreakdown).await;
    assert_eq!(first.new_driver_id, Some(DriverId::from("B")));
    assert_eq!(b.expect("order_assigned").await["order_id"], "O1");
    let order = e.hub.order(&OrderId::from("O1")).unwrap();
    order
        .send(Accept {
            driver_id: DriverId::from("B"),
            answer: None,
        })
        .await
        .unwrap()
        .unwrap();
    let second = e.decide("B", "O1", IncidentKind::Accident).await;
    assert_eq!(second.action_taken, Action::ReassignmentInitiated);
    // A is free and nearer than C, but reported on this order: it never gets it back.
    assert_eq!(second.new_driver_id, Some(DriverId::from("C")));
    assert_eq!(c.expect("order_assigned").await["previous_driver_id"], "B");
    assert_eq!(b.expect("order_unassigned").await["order_id"], "O1");
    assert_eq!(e.holder("O1").await, Some(DriverId::from("C")));
    let state = order.send(GetOrder).await.unwrap();
    assert_eq!(
        state.order.version, 5,
        "created, accepted, moved, accepted, moved"
    );
}
on_both_backends!(a_cascade_moves_the_order_from_a_to_b_then_to_c);
