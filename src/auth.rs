//! Identity: JWT `Claims`, signing and verification (HS256, or RS256 with a configured public key),
//! the `AuthUser` extractor for REST and WebSocket upgrades, and who may join which room.

use crate::config::AuthSettings;
use crate::error::AppError;
use crate::protocol::{DriverId, Role, Room};
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::future::{ready, Ready};

fn default_fleet() -> String {
    "default".to_string()
}

/// The claims of a Rallypoint token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_id: Option<DriverId>,
    #[serde(default = "default_fleet")]
    pub fleet: String,
    /// Room patterns an observer may join (`*` at the end matches any suffix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
    /// Crowd events the bearer may watch (SPEC 8): their ids, or `*` for every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// A driver's display name, used when the driver is registered on first connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A customer's id (SPEC 10): the orders it follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// A partner's id (a restaurant or shipper, SPEC 10): the orders it places.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
    pub exp: i64,
    pub iat: i64,
}

impl Claims {
    /// Claims for `sub` in `role`, valid for `ttl_s` seconds from now.
    pub fn new(
        sub: &str,
        role: Role,
        driver_id: Option<DriverId>,
        fleet: &str,
        ttl_s: i64,
    ) -> Self {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: sub.to_string(),
            role,
            driver_id,
            fleet: fleet.to_string(),
            rooms: None,
            events: None,
            name: None,
            customer_id: None,
            partner_id: None,
            exp: now + ttl_s,
            iat: now,
        }
    }

    /// The driver this token speaks for, when it is a driver's.
    pub fn driver(&self) -> Option<&DriverId> {
        match self.role {
            Role::Driver => self.driver_id.as_ref(),
            _ => None,
        }
    }

    /// The customer this token speaks for, when it is a customer's.
    pub fn customer(&self) -> Option<&str> {
        match self.role {
            Role::Customer => self.customer_id.as_deref(),
            _ => None,
        }
    }

    /// The partner this token speaks for, when it is a partner's.
    pub fn partner(&self) -> Option<&str> {
        match self.role {
            Role::Partner => self.partner_id.as_deref(),
            _ => None,
        }
    }

    /// Refuses a token whose role needs an id claim it does not carry: a driver without
    /// `driver_id`, a customer without `customer_id`, a partner without `partner_id`.
    pub fn check_identity(&self) -> Result<(), AppError> {
        let missing = match self.role {
            Role::Driver if self.driver_id.is_none() => Some("driver_id"),
            Role::Customer if self.customer_id.as_deref().is_none_or(str::is_empty) => {
                Some("customer_id")
            }
            Role::Partner if self.partner_id.as_deref().is_none_or(str::is_empty) => {
                Some("partner_id")
            }
            _ => None,
        };
        match missing {
            Some(claim) => Err(AppError::Unauthorized(format!(
                "a {}'s token must carry `{claim}`",
                self.role
            ))),
            None => Ok(()),
        }
    }

    /// Whether the token's `events` claim names crowd event `id` (or is `*`).
    pub fn names_event(&self, id: &str) -> bool {
        self.events
            .as_deref()
            .is_some_and(|e| e.iter().any(|x| x == "*" || x == id))
    }

    /// Whether the bearer may watch crowd event `id` (SPEC 8): admins and dispatchers any,
    /// an observer by its `rooms` patterns, anyone else by its `events` claim.
    pub fn may_watch_event(&self, id: &str) -> bool {
        may_join(self, &Room::Event(id.to_string()), OrderParties::default())
    }

    pub fn is_staff(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Dispatcher)
    }

    /// Refuses unless the role is one of `roles`.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), AppError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(AppError::forbidden(format!(
                "role `{}` may not {what}",
                self.role
            )))
        }
    }
}

/// Signs and verifies tokens with the configured keys.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenKeys {
    /// Keys from configuration: RS256 verification when a public key is set, else HS256.
    pub fn from_settings(auth: &AuthSettings) -> Result<TokenKeys, String> {
        let (decoding, algorithm, encoding) = if auth.public_key_pem.trim().is_empty() {
            (
                DecodingKey::from_secret(auth.secret.as_bytes()),
                Algorithm::HS256,
                Some(EncodingKey::from_secret(auth.secret.as_bytes())),
            )
        } else {
            let key = DecodingKey::from_rsa_pem(auth.public_key_pem.as_bytes())
                .map_err(|e| format!("auth.public_key_pem is not an RSA public key in PEM: {e}"))?;
            (key, Algorithm::RS256, None)
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = auth.leeway_s;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(TokenKeys {
            encoding,
            decoding,
            validation,
        })
    }

    /// Signs `claims` (HS256 only: an RS256 deployment issues tokens elsewhere).
    pub fn sign(&self, claims: &Claims) -> Result<String, AppError> {
        let key = self.encoding.as_ref().ok_or_else(|| {
            AppError::internal("this server verifies RS256 tokens and cannot sign them")
        })?;
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, key)
            .map_err(|e| AppError::internal(format!("signing a token: {e}")))
    }

    /// Verifies a token: signature, algorithm and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, AppError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AppError::TokenExpired,
                ErrorKind::InvalidAlgorithm => {
                    AppError::Unauthorized("the token is signed with another algorithm".into())
                }
                ErrorKind::InvalidSignature => {
                    AppError::Unauthorized("the token's signature does not verify".into())
                }
                ErrorKind::MissingRequiredClaim(c) => {
                    AppError::Unauthorized(format!("the token has no `{c}` claim"))
                }
                _ => AppError::Unauthorized(format!("the token is invalid: {e}")),
            })?;
        let claims = data.claims;
        claims.check_identity()?;
        Ok(claims)
    }
}

/// The caller of a REST route or a WebSocket upgrade, from `Authorization: Bearer` or `?token=`.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Claims);

/// Reads the bearer token of a request: the header first, then `?token=`.
pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    if let Some(h) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        if let Ok(v) = h.to_str() {
            if let Some(t) = v
                .strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
            {
                return Some(t.trim().to_string());
            }
        }
    }
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("token").cloned())
}

impl FromRequest for AuthUser {
    type Error = AppError;
    type Future = Ready<Result<AuthUser, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = (|| {
            let keys = req
                .app_data::<web::Data<TokenKeys>>()
                .ok_or_else(|| AppError::internal("token keys are not configured"))?;
            let token = bearer_token(req).ok_or_else(|| {
                AppError::Unauthorized(
                    "no token: send `Authorization: Bearer <token>` (get one with `rallypoint token`)"
                        .into(),
                )
            })?;
            // An expired token is a 401 with code `token_expired`.
            keys.verify(&token).map(AuthUser)
        })();
        ready(result)
    }
}

/// Whether an observer's `patterns` admit `room` (`*` at the end matches any suffix).
pub fn pattern_admits(patterns: &[String], room: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => room.starts_with(prefix),
        None => p == room,
    })
}

/// Whose an order is, for the right to its room: its current driver and its customer, as the
/// order's actor holds them. `None` of both for any other room, or an order not active.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderParties<'a> {
    pub driver: Option<&'a DriverId>,
    pub customer: Option<&'a str>,
}

/// Who may join which room (SPEC 3, 9, 10): `unit_tracking` as `dispatch` (staff, observers
/// whose patterns match), `reporter:<sub>` that reporter and staff, `event:<id>` (SPEC 8) staff,
/// observers by their patterns and anyone else by its `events` claim. `order` says whose an
/// order is, for order rooms.
pub fn may_join(claims: &Claims, room: &Room, order: OrderParties<'_>) -> bool {
    if claims.role == Role::Observer {
        // A customer's, a partner's or a reporter's room is theirs and the staff's alone,
        // whatever the patterns.
        if matches!(
            room,
            Room::Customer(_) | Room::Partner(_) | Room::Reporter(_)
        ) {
            return false;
        }
        return claims
            .rooms
            .as_deref()
            .is_some_and(|p| pattern_admits(p, &room.to_string()));
    }
    match (claims.role, room) {
        (Role::Admin, _) => true,
        (Role::Dispatcher, Room::Fleet(f)) => *f == claims.fleet,
        (Role::Dispatcher, _) => true,
        (Role::Driver, Room::Fleet(f)) => *f == claims.fleet,
        (Role::Driver, Room::Driver(id)) => claims.driver_id.as_ref() == Some(id),
        (Role::Driver, Room::Order(_)) => {
            order.driver.is_some() && claims.driver_id.as_ref() == order.driver
        }
        (Role::Customer, Room::Customer(id)) => claims.customer() == Some(id.as_str()),
        (Role::Customer, Room::Order(_)) => {
            order.customer.is_some() && claims.customer() == order.customer
        }
        (Role::Partner, Room::Partner(id)) => claims.partner() == Some(id.as_str()),
        (Role::Reporter, Room::Reporter(sub)) => *sub == claims.sub,
        // SPEC 8: anyone else watches the crowd events its `events` claim names.
        (_, Room::Event(id)) => claims.names_event(id),
        (
            Role::Driver
            | Role::Customer
            | Role::Partner
            | Role::Observer
            | Role::Reporter
            | Role::Operator
            | Role::Sensor,
            _,
        ) => false,
    }
}

/// The rooms a session joins on connect.
pub fn default_rooms(claims: &Claims) -> Vec<Room> {
    match claims.role {
        Role::Driver => {
            let mut rooms = vec![Room::fleet(&claims.fleet)];
            if let Some(d) = &claims.driver_id {
                rooms.push(Room::Driver(d.clone()));
            }
            rooms
        }
        // `dispatch` alone: it gets every publication a fleet room does that staff need, and
        // default rooms never overlap for one publication (SPEC 3). Fleet rooms are a `join` away.
        Role::Dispatcher | Role::Admin => vec![Room::Dispatch],
        Role::Customer => claims
            .customer()
            .map(|c| vec![Room::Customer(c.to_string())])
            .unwrap_or_default(),
        Role::Partner => claims
            .partner()
            .map(|p| vec![Room::Partner(p.to_string())])
            .unwrap_or_default(),
        // SPEC 9: every update of the reporter's own emergencies.
        Role::Reporter => vec![Room::Reporter(claims.sub.clone())],
        // SPEC 8: an event's room is joined with `?event_id=` or `join`.
        Role::Observer | Role::Operator | Role::Sensor => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AuthSettings {
        AuthSettings {
            secret: "a-test-secret-of-some-length-at-least-32-bytes".into(),
            public_key_pem: String::new(),
            leeway_s: 0,
            dev_login: false,
            dev_token_ttl_s: 60,
        }
    }

    #[test]
    fn a_signed_token_verifies_to_its_claims() {
        let keys = TokenKeys::from_settings(&settings()).unwrap();
        let claims = Claims::new("u1", Role::Driver, Some("DRV-1".into()), "north", 60);
        let back = keys.verify(&keys.sign(&claims).unwrap()).unwrap();
        assert_eq!(back, claims);
    }

    #[test]
    fn an_expired_token_is_token_expired() {
        let keys = TokenKeys::from_settings(&settings()).unwrap();
        let claims = Claims::new("u1", Role::Admin, None, "default", -10);
        let e = keys.verify(&keys.sign(&claims).unwrap()).unwrap_err();
        assert!(matches!(e, AppError::TokenExpired));
    }

    #[test]
    fn a_token_signed_with_another_key_is_unauthorized() {
        let keys = TokenKeys::from_settings(&settings()).unwrap();
        let mut other = settings();
        other.secret = "another-secret-entirely-also-32-bytes-long".into();
        let other = TokenKeys::from_settings(&other).unwrap();
        let t = other
            .sign(&Claims::new("u1", Role::Admin, None, "default", 60))
            .unwrap();
        assert!(matches!(keys.verify(&t), Err(AppError::Unauthorized(_))));
    }

    #[test]
    fn with_a_public_key_rs256_tokens_verify_and_hs256_ones_are_refused() {
        let mut rs = settings();
        rs.public_key_pem = include_str!("../tests/fixtures/rs256_public.pem").into();
        let keys = TokenKeys::from_settings(&rs).unwrap();
        let private =
            EncodingKey::from_rsa_pem(include_bytes!("../tests/fixtures/rs256_private.pem"))
                .unwrap();
        let claims = Claims::new("u1", Role::Dispatcher, None, "default", 60);
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &private).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), claims);
        let hs = TokenKeys::from_settings(&settings())
            .unwrap()
            .sign(&claims)
            .unwrap();
        assert!(matches!(keys.verify(&hs), Err(AppError::Unauthorized(_))));
        assert!(keys.sign(&claims).is_err(), "an RS256 server does not sign");
    }

    #[test]
    fn drivers_join_only_their_own_rooms() {
        let c = Claims::new("u1", Role::Driver, Some("D1".into()), "north", 60);
        let none = OrderParties::default();
        assert!(may_join(&c, &Room::fleet("north"), none));
        assert!(!may_join(&c, &Room::fleet("south"), none));
        assert!(may_join(&c, &Room::Driver("D1".into()), none));
        assert!(!may_join(&c, &Room::Driver("D2".into()), none));
        assert!(!may_join(&c, &Room::Dispatch, none));
        assert!(!may_join(&c, &Room::Customer("C1".into()), none));
        let d1 = DriverId::from("D1");
        let held = OrderParties {
            driver: Some(&d1),
            customer: None,
        };
        assert!(may_join(&c, &Room::Order("O1".into()), held));
        assert!(!may_join(&c, &Room::Order("O1".into()), none));
    }

    #[test]
    fn observers_join_only_rooms_matching_their_patterns() {
        let mut c = Claims::new("o1", Role::Observer, None, "default", 60);
        c.rooms = Some(vec!["order:*".into(), "fleet:north".into()]);
        let none = OrderParties::default();
        assert!(may_join(&c, &Room::Order("X".into()), none));
        assert!(may_join(&c, &Room::fleet("north"), none));
        assert!(!may_join(&c, &Room::fleet("south"), none));
        assert!(!may_join(&c, &Room::Dispatch, none));
        c.rooms = Some(vec!["*".into()]);
        assert!(!may_join(&c, &Room::Customer("C1".into()), none));
        assert!(!may_join(&c, &Room::Partner("P1".into()), none));
    }

    fn customer(id: &str) -> Claims {
        let mut c = Claims::new("c1", Role::Customer, None, "default", 60);
        c.customer_id = Some(id.into());
        c
    }

    #[test]
    fn customers_join_their_own_room_and_their_own_orders_only() {
        let c = customer("C1");
        let none = OrderParties::default();
        assert_eq!(default_rooms(&c), vec![Room::Customer("C1".into())]);
        assert!(may_join(&c, &Room::Customer("C1".into()), none));
        assert!(!may_join(&c, &Room::Customer("C2".into()), none));
        let d1 = DriverId::from("D1");
        let of = |customer| OrderParties {
            driver: Some(&d1),
            customer,
        };
        assert!(may_join(&c, &Room::Order("O1".into()), of(Some("C1"))));
        assert!(!may_join(&c, &Room::Order("O1".into()), of(Some("C2"))));
        assert!(!may_join(&c, &Room::Order("O1".into()), of(None)));
        for room in [
            Room::Dispatch,
            Room::fleet("default"),
            Room::Driver("D1".into()),
            Room::Partner("C1".into()),
        ] {
            assert!(!may_join(&c, &room, of(Some("C1"))), "{room}");
        }
    }

    #[test]
    fn partners_join_their_own_room_only_and_staff_any_customer_or_partner_room() {
        let mut p = Claims::new("p1", Role::Partner, None, "default", 60);
        p.partner_id = Some("P1".into());
        let none = OrderParties::default();
        assert_eq!(default_rooms(&p), vec![Room::Partner("P1".into())]);
        assert!(may_join(&p, &Room::Partner("P1".into()), none));
        assert!(!may_join(&p, &Room::Partner("P2".into()), none));
        assert!(!may_join(&p, &Room::Order("O1".into()), none));
        assert!(!may_join(&p, &Room::Dispatch, none));
        for role in [Role::Admin, Role::Dispatcher] {
            let staff = Claims::new("s", role, None, "default", 60);
            assert!(may_join(&staff, &Room::Partner("P1".into()), none));
            assert!(may_join(&staff, &Room::Customer("C1".into()), none));
        }
        let d = Claims::new("d", Role::Driver, Some("D1".into()), "default", 60);
        assert!(!may_join(&d, &Room::Customer("C1".into()), none));
    }

    #[test]
    fn reporters_join_their_own_room_only_and_unit_tracking_is_the_staffs() {
        let r = Claims::new("rep-1", Role::Reporter, None, "default", 60);
        let none = OrderParties::default();
        assert_eq!(default_rooms(&r), vec![Room::Reporter("rep-1".into())]);
        assert!(may_join(&r, &Room::Reporter("rep-1".into()), none));
        for room in [
            Room::Reporter("rep-2".into()),
            Room::UnitTracking,
            Room::Dispatch,
        ] {
            assert!(!may_join(&r, &room, none), "{room}");
        }
        for role in [Role::Admin, Role::Dispatcher] {
            let staff = Claims::new("s", role, None, "default", 60);
            assert!(may_join(&staff, &Room::UnitTracking, none));
            assert!(may_join(&staff, &Room::Reporter("rep-1".into()), none));
        }
        let d = Claims::new("d", Role::Driver, Some("U1".into()), "units", 60);
        assert!(!may_join(&d, &Room::UnitTracking, none));
        let mut o = Claims::new("o", Role::Observer, None, "default", 60);
        o.rooms = Some(vec!["unit_*".into(), "reporter:*".into()]);
        assert!(may_join(&o, &Room::UnitTracking, none));
        assert!(!may_join(&o, &Room::Reporter("rep-1".into()), none));
    }

    #[test]
    fn a_customer_or_partner_token_without_its_id_is_unauthorized() {
        let keys = TokenKeys::from_settings(&settings()).unwrap();
        for role in [Role::Customer, Role::Partner] {
            let bare = Claims::new("u", role, None, "default", 60);
            let e = keys.verify(&keys.sign(&bare).unwrap()).unwrap_err();
            assert!(matches!(e, AppError::Unauthorized(_)), "{role}");
        }
        let c = customer("C1");
        assert_eq!(keys.verify(&keys.sign(&c).unwrap()).unwrap(), c);
    }
}
