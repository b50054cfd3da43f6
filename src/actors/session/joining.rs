//! Joining rooms: the connect sequence (the driver attached, the default rooms joined, then
//! `welcome`, each room's `joined` and its replay), and a client's `join`, decided by the
//! command layer, with its replay written before anything live.

use super::*;

impl WsSession {
    /// The connect sequence: attach the driver, join the default rooms, then `welcome`, then each
    /// room's `joined` and replay. The session handles nothing else meanwhile, so everything live
    /// comes after.
    pub(super) fn connect(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let since = std::mem::take(&mut self.since);
        // `?event_id=E` (SPEC 8): `event:E` joined like a `join`, from its `since=` position; a
        // token that may not gets `forbidden` and the session goes on.
        let event = self.event.take().map(|e| {
            let room = format!("event:{e}");
            let from = since.get(&room).copied();
            (room, from)
        });
        let work = crate::actors::connect::connect(crate::actors::connect::Connecting {
            hub: self.hub.clone(),
            claims: self.claims.clone(),
            id: self.id,
            deliver: ctx.address().recipient::<Deliver>(),
            leave: ctx.address().recipient::<LeaveRooms>(),
            endpoint: self.outbox.endpoint(),
            rooms: auth::default_rooms(&self.claims)
                .into_iter()
                .map(|room| {
                    let from = since.get(&room.to_string()).copied();
                    (room, from)
                })
                .collect(),
        });
        ctx.wait(work.into_actor(self).map(|res, act, ctx| {
            let crate::actors::connect::Connected { driver, joined } = match res {
                Ok(v) => v,
                Err(e) => {
                    log::error!(
                        "[WEBSOCKET] session={} connect failed: {}",
                        act.id,
                        crate::telemetry::q(&e.to_string())
                    );
                    act.send(ctx, &ServerMsg::error(None, &e));
                    act.close(ctx, 1011, "could not set up the session");
                    return;
                }
            };
            let rooms: BTreeMap<String, i64> =
                joined.iter().map(|(r, j)| (r.to_string(), j.seq)).collect();
            let (status, orders) = match driver {
                Some((s, o)) => (Some(s), Some(o)),
                None => (None, None),
            };
            act.send(
                ctx,
                &ServerMsg::Welcome {
                    session_id: act.id,
                    sub: act.claims.sub.clone(),
                    role: act.claims.role,
                    driver_id: act.claims.driver_id.clone(),
                    fleet: act.claims.fleet.clone(),
                    heartbeat_ms: act.hub.settings.realtime.heartbeat_ms,
                    server_time: chrono::Utc::now(),
                    rooms,
                    status,
                    orders,
                },
            );
            for (room, reply) in joined {
                if !act.rooms.contains(&room) {
                    act.rooms.push(room.clone());
                }
                act.write_join(ctx, &room, reply);
            }
            if let Some((room, from)) = event {
                act.join(ctx, None, &room, from);
            }
        }));
    }

    /// Writes `joined`, then the replay, then `resync` when history did not reach back.
    pub(super) fn write_join(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        room: &Room,
        reply: crate::actors::room::JoinReply,
    ) {
        let name = room.to_string();
        self.send(
            ctx,
            &ServerMsg::Joined {
                room: name.clone(),
                seq: reply.seq,
                recovered: reply.recovered,
            },
        );
        crate::stats::messages_out("replay", reply.replay.len());
        for frame in reply.replay {
            ctx.text(frame);
        }
        if reply.recovered == Some(false) {
            self.send(ctx, &ServerMsg::Resync { room: name });
        }
    }

    /// `join`: decided by the command layer (`commands::session::join`), then the room joined
    /// with this session's outbox and its replay written.
    pub(super) fn join(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        reference: Option<String>,
        name: &str,
        since: Option<i64>,
    ) {
        let work = crate::actors::connect::join(
            &self.hub,
            &self.claims,
            &self.rooms,
            name,
            since,
            self.id,
            self.outbox.endpoint(),
        );
        // Waited for: the replay is written before anything live that arrives meanwhile.
        ctx.wait(work.into_actor(self).map(move |res, act, ctx| match res {
            Ok((join, reply)) => {
                let ack = join.ack(reply.seq);
                if !act.rooms.contains(&join.room) {
                    act.rooms.push(join.room.clone());
                }
                act.write_join(ctx, &join.room, reply);
                if let Some(r) = reference {
                    act.send(ctx, &ServerMsg::ack(r, ack));
                }
            }
            Err(e) => act.answer(ctx, reference, Err(e)),
        }));
    }
}
