//! Connection slots: each open session holds one of `limits.max_connections` and one of its
//! `sub`'s `limits.max_connections_per_sub`, taken atomically before the upgrade and given back
//! when the session (and its slot) is dropped; meanwhile it counts under its role for
//! `GET /api/v1/stats`.

use super::{lock, Hub};
use crate::protocol::Role;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// One of `limits.max_connections`, and one of its `sub`'s `limits.max_connections_per_sub`,
/// held by a session for its lifetime.
pub struct ConnectionSlot {
    hub: Arc<Hub>,
    sub: Option<String>,
    role: Option<Role>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.hub.connections.fetch_sub(1, Ordering::AcqRel);
        if let Some(role) = self.role.take() {
            let mut roles = lock(&self.hub.roles);
            if let Some(n) = roles.get_mut(&role) {
                *n = n.saturating_sub(1);
            }
        }
        if let Some(sub) = self.sub.take() {
            let mut subs = lock(&self.hub.subs);
            if let Some(n) = subs.get_mut(&sub) {
                *n -= 1;
                if *n == 0 {
                    subs.remove(&sub);
                }
            }
        }
    }
}

/// Why a connection was not given a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRefused {
    /// The node holds `limits.max_connections`.
    Node(usize),
    /// The `sub` holds `limits.max_connections_per_sub`.
    Sub(usize),
}

impl Hub {
    /// Takes one of `limits.max_connections` slots and one of `sub`'s
    /// `limits.max_connections_per_sub`, or says which is full. Both are given back when the
    /// slot is dropped (with the session that holds it). The session is counted under `role`
    /// meanwhile (`connections_by_role`).
    pub fn reserve_connection(
        self: &Arc<Self>,
        sub: &str,
        role: Role,
    ) -> Result<ConnectionSlot, SlotRefused> {
        let max = self.settings.limits.max_connections;
        self.connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| SlotRefused::Node(max))?;
        // Dropped on a refusal below: gives the node's slot back.
        let mut slot = ConnectionSlot {
            hub: self.clone(),
            sub: None,
            role: None,
        };
        let per_sub = self.settings.limits.max_connections_per_sub;
        let mut subs = lock(&self.subs);
        let held = subs.get(sub).copied().unwrap_or(0);
        if held >= per_sub {
            drop(subs);
            return Err(SlotRefused::Sub(per_sub));
        }
        subs.insert(sub.to_string(), held + 1);
        drop(subs);
        slot.sub = Some(sub.to_string());
        *lock(&self.roles).entry(role).or_default() += 1;
        slot.role = Some(role);
        Ok(slot)
    }

    /// This node's open sessions by their role when they connected (every role, zeros too).
    pub fn connections_by_role(&self) -> Vec<(Role, usize)> {
        let roles = lock(&self.roles);
        Role::ALL
            .iter()
            .map(|r| (*r, roles.get(r).copied().unwrap_or(0)))
            .collect()
    }
}
