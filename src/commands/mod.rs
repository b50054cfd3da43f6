//! Commands: what a client asks for, over any transport (DESIGN: transport → command → system
//! actor). A transport decodes a frame, an event or a request into a `Command`, hands it to
//! `run` with its caller's `Claims` and idempotency key, and encodes the `Answer` or the error.
//! It knows no role, no input rule and no idempotency; this layer knows no frame, packet or
//! HTTP status.
//!
//! `Command` is an enum, so every transport has one type to decode into and one `run` to call,
//! and `run` is the one place where a key is claimed; each variant is a struct of its own, with
//! its rules beside it in the file of its concern: `driver` (status, location, registering),
//! `orders` (accept, decline, order status, create, reassign, cancel), `bulk` (orders created
//! in bulk), `report` (the emergency path), `sos` (a driver's SOS and its resolve), `publish` (an
//! admin's message to a room); the emergency units' commands are that system's own
//! (`crate::units::commands`), the crowd operations' too (`crate::crowd::commands`). `session` decides the commands that change the connection itself
//! (`join`, `leave`,
//! `refresh`) and answers what the transport must apply to its own state; `ping` is the
//! transport's.
//!
//! A command's rules come in two places, kept where each always was:
//! - `admit`, before the key is claimed: the REST actions' role and input checks, and the
//!   contract's ranges (which the native decoder checks first, so there they never fail);
//! - under the key, in the command's work: the WebSocket messages' role checks (PROTOCOL 3: the
//!   key is claimed before anything is looked up, and a refusal is the answer stored under it),
//!   then whatever needs an actor.
//!
//! Moving a rule from one place to the other would change what a repeated key answers after its
//! caller's claims changed, so it is a decision of its own, not a refactoring.
//!
//! An answer's value is the raw result (the order, the event, the status): the actor that
//! commits the effect stores that value under the request's key in the same transaction, REST
//! returns it, and `AckShape` makes a socket's ack from it, for a first answer and a repeat
//! alike. Rate limits are not here: frames are counted by the transport that reads them, and
//! REST history reads by the `Hub` (`limits.rest_per_sub_per_sec`).

mod answer;
pub mod bulk;
pub mod driver;
pub mod orders;
pub mod publish;
pub mod report;
pub mod session;
pub mod sos;
#[cfg(test)]
mod tests;

pub use answer::{to_value, AckShape, Answer};
pub use orders::order_actor;

use crate::actors::Hub;
use crate::auth::Claims;
use crate::config::Settings;
use crate::crowd::commands as crowd;
use crate::crowd::records as crowd_records;
use crate::error::AppError;
use crate::idempotency::{self, AnswerKey};
use crate::protocol::ClientMsg;
use crate::units::commands as units;
use std::sync::Arc;

type Reply = Result<serde_json::Value, AppError>;

/// The idempotency key a request came with, as its transport read it (`Err`: malformed). `run`
/// refuses a malformed key after the command's `admit`: a request its caller may not make is
/// refused for that, whatever its key.
pub type IdempotencyKey = Result<Option<String>, AppError>;

/// Everything a client may ask to be done, one variant per client message and REST action.
/// It travels between nodes as JSON (`cluster::forward`): a follower hands its commands to the leader.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "command", content = "args", rename_all = "snake_case")]
pub enum Command {
    /// `status`.
    SetStatus(driver::SetStatus),
    /// `location`.
    SendLocation(driver::SendLocation),
    /// `POST /api/v1/drivers`.
    RegisterDriver(driver::RegisterDriver),
    /// `accept`.
    Accept(orders::Accept),
    /// `decline`.
    Decline(orders::Decline),
    /// `order_status`.
    SetOrderStatus(orders::SetOrderStatus),
    /// `POST /api/v1/orders`.
    CreateOrder(orders::CreateOrder),
    /// `POST /api/v1/orders/bulk`.
    CreateOrders(bulk::CreateOrders),
    /// `POST /api/v1/orders/{id}/reassign`.
    Reassign(orders::Reassign),
    /// `POST /api/v1/orders/{id}/cancel`.
    Cancel(orders::Cancel),
    /// `report`.
    Report(report::Report),
    /// `POST /api/v1/events/delay`.
    ReportDelay(report::ReportDelay),
    /// `POST /api/v1/rooms/{room}/messages`.
    Publish(publish::Publish),
    /// `sos`.
    Sos(sos::Sos),
    /// `POST /api/v1/sos/{id}/resolve`.
    ResolveSos(sos::ResolveSos),
    /// `POST /api/v1/emergencies`.
    CreateEmergency(units::CreateEmergency),
    /// `POST /api/v1/emergencies/{id}/dispatch`.
    DispatchEmergency(units::DispatchEmergency),
    /// `complete_emergency`, `POST /api/v1/emergencies/{id}/complete`.
    CompleteEmergency(units::CompleteEmergency),
    /// `POST /api/v1/emergencies/{id}/cancel`.
    CancelEmergency(units::CancelEmergency),
    /// `POST /api/v1/events` (a crowd event, SPEC 8).
    CreateEvent(crowd::CreateEvent),
    /// `POST /api/v1/cctv/objects`.
    CameraCount(crowd::CameraCount),
    /// `POST /api/v1/alerts/{id}/resolve`.
    ResolveAlert(crowd::ResolveAlert),
    /// `ping_location`, `POST /api/v1/pings`.
    PingLocation(crowd::PingLocation),
    /// `POST /api/v1/actions`.
    CreateAction(crowd_records::CreateAction),
    /// `POST /api/v1/reports`.
    CreateReport(crowd_records::CreateReport),
    /// `POST /api/v1/ai/insights`.
    AskInsight(crowd_records::AskInsight),
    /// `POST /api/v1/ai/predictions`.
    AskPrediction(crowd_records::AskPrediction),
}

/// A client message, sorted by who answers it.
#[derive(Debug, Clone)]
pub enum Request {
    /// Work for `run`.
    Command(Command),
    /// A change to the connection: decided by `session`, applied by the transport.
    Session(session::SessionCommand),
    /// `ping`: the transport answers it (`pong`).
    Ping,
}

impl From<ClientMsg> for Request {
    fn from(msg: ClientMsg) -> Request {
        use session::SessionCommand;
        let command = match msg {
            ClientMsg::Ping => return Request::Ping,
            ClientMsg::Join { room, since } => {
                return Request::Session(SessionCommand::Join { room, since })
            }
            ClientMsg::Leave { room } => return Request::Session(SessionCommand::Leave { room }),
            ClientMsg::Refresh { token } => {
                return Request::Session(SessionCommand::Refresh { token })
            }
            ClientMsg::Status { status, driver_id } => {
                Command::SetStatus(driver::SetStatus { status, driver_id })
            }
            ClientMsg::Location {
                lat,
                lng,
                speed,
                heading,
                accuracy,
                driver_id,
            } => Command::SendLocation(driver::SendLocation {
                lat,
                lng,
                speed,
                heading,
                accuracy,
                driver_id,
            }),
            ClientMsg::Accept { order_id } => Command::Accept(orders::Accept { order_id }),
            ClientMsg::Decline { order_id } => Command::Decline(orders::Decline { order_id }),
            ClientMsg::OrderStatus { order_id, status } => {
                Command::SetOrderStatus(orders::SetOrderStatus { order_id, status })
            }
            ClientMsg::Report {
                order_id,
                kind,
                comment,
            } => Command::Report(report::Report {
                order_id,
                kind,
                comment,
            }),
            ClientMsg::Sos { lat, lng, message } => Command::Sos(sos::Sos { lat, lng, message }),
            ClientMsg::CompleteEmergency { request_id } => {
                Command::CompleteEmergency(units::CompleteEmergency { request_id })
            }
            ClientMsg::PingLocation {
                event_id,
                device_id,
                lat,
                lng,
            } => Command::PingLocation(crowd::PingLocation {
                event_id,
                device_id,
                lat,
                lng,
            }),
        };
        Request::Command(command)
    }
}

impl Command {
    /// How a socket's ack is made from this command's value.
    pub fn shape(&self) -> AckShape {
        match self {
            Command::Report(_) => AckShape::Event,
            Command::Sos(_) => AckShape::Alert,
            Command::CompleteEmergency(_) => AckShape::Emergency,
            Command::Accept(_) | Command::SetOrderStatus(_) => AckShape::Order,
            Command::Decline(_) => AckShape::Declined,
            Command::SetStatus(_) => AckShape::Status,
            _ => AckShape::Plain,
        }
    }

    /// The rules checked before the key is claimed (see the module doc).
    fn admit(&self, settings: &Settings, claims: &Claims) -> Result<(), AppError> {
        match self {
            Command::SetStatus(_)
            | Command::Accept(_)
            | Command::Decline(_)
            | Command::SetOrderStatus(_)
            | Command::CompleteEmergency(_) => Ok(()),
            Command::SendLocation(c) => c.admit(),
            Command::RegisterDriver(c) => c.admit(settings, claims),
            Command::CreateOrder(c) => c.admit(claims),
            Command::CreateOrders(c) => c.admit(claims),
            Command::Reassign(c) => c.admit(claims),
            Command::Cancel(c) => c.admit(claims),
            Command::Report(c) => c.admit(),
            Command::ReportDelay(c) => c.admit(claims),
            Command::Publish(c) => c.admit(claims),
            Command::Sos(c) => c.admit(),
            Command::ResolveSos(c) => c.admit(claims),
            Command::CreateEmergency(c) => c.admit(claims),
            Command::DispatchEmergency(c) => c.admit(claims),
            Command::CancelEmergency(c) => c.admit(claims),
            Command::CreateEvent(c) => c.admit(claims),
            Command::CameraCount(c) => c.admit(claims),
            Command::ResolveAlert(c) => c.admit(claims),
            Command::PingLocation(c) => c.admit(claims),
            Command::CreateAction(c) => c.admit(claims),
            Command::CreateReport(c) => c.admit(claims),
            Command::AskInsight(c) => c.admit(claims),
            Command::AskPrediction(c) => c.admit(claims),
        }
    }

    /// The work under the key: its remaining rules, then the system actor. `answer` goes to the
    /// actor that commits the effect.
    async fn work(self, hub: Arc<Hub>, claims: Claims, answer: Option<AnswerKey>) -> Reply {
        match self {
            Command::SetStatus(c) => c.run(&hub, &claims, answer).await,
            Command::SendLocation(c) => c.run(&hub, &claims).await,
            Command::RegisterDriver(c) => c.run(&hub, answer).await,
            Command::Accept(c) => c.run(&hub, &claims, answer).await,
            Command::Decline(c) => c.run(&hub, &claims, answer).await,
            Command::SetOrderStatus(c) => c.run(&hub, &claims, answer).await,
            Command::CreateOrder(c) => c.run(&hub, &claims, answer).await,
            Command::CreateOrders(c) => c.run(&hub, &claims, answer).await,
            Command::Reassign(c) => c.run(&hub, &claims, answer).await,
            Command::Cancel(c) => c.run(&hub, &claims, answer).await,
            Command::Report(c) => c.run(&hub, claims, answer).await,
            Command::ReportDelay(c) => c.run(&hub, claims, answer).await,
            Command::Publish(c) => c.run(&hub, &claims, answer).await,
            Command::Sos(c) => c.run(&hub, &claims, answer).await,
            Command::ResolveSos(c) => c.run(&hub, &claims, answer).await,
            Command::CreateEmergency(c) => c.run(&hub, &claims, answer).await,
            Command::DispatchEmergency(c) => c.run(&hub, answer).await,
            Command::CompleteEmergency(c) => c.run(&hub, &claims, answer).await,
            Command::CancelEmergency(c) => c.run(&hub, &claims, answer).await,
            Command::CreateEvent(c) => c.run(&hub, &claims, answer).await,
            Command::CameraCount(c) => c.run(&hub, answer).await,
            Command::ResolveAlert(c) => c.run(&hub, &claims, answer).await,
            Command::PingLocation(c) => c.run(&hub).await,
            Command::CreateAction(c) => c.run(&hub, &claims, answer).await,
            Command::CreateReport(c) => c.run(&hub, &claims, answer).await,
            Command::AskInsight(c) => c.run(&hub).await,
            Command::AskPrediction(c) => c.run(&hub).await,
        }
    }
}

/// Runs `command` for `claims`: its `admit` rules, then once per (`sub`, key) its work (a
/// repeat gets the first answer, value or error; see `idempotency`). Every transport calls this.
///
/// The work runs as a task of its own: a caller that goes away meanwhile does not cancel it
/// halfway (`idempotency::once`).
pub async fn run(
    hub: Arc<Hub>,
    claims: Claims,
    command: Command,
    key: IdempotencyKey,
) -> Result<Answer, AppError> {
    command.admit(&hub.settings, &claims)?;
    if hub.cluster.forwards() {
        // Another node leads: it runs every command, so one writer decides each fact.
        return crate::cluster::node::forward(hub, claims, command, key).await;
    }
    let key = key?;
    let shape = command.shape();
    let sub = claims.sub.clone();
    let h = hub.clone();
    let outcome =
        idempotency::once(hub, sub, key, move |answer| command.work(h, claims, answer)).await;
    outcome.into_result().map(|value| Answer { value, shape })
}
