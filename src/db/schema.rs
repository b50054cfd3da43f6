// @generated automatically by Diesel CLI.

diesel::table! {
    audit (id) {
        id -> Text,
        actor -> Text,
        action -> Text,
        order_id -> Text,
        from_driver_id -> Nullable<Text>,
        to_driver_id -> Nullable<Text>,
        reason -> Text,
        forced -> Integer,
        created_at -> Timestamp,
    }
}

diesel::table! {
    drivers (id) {
        id -> Text,
        name -> Text,
        fleet -> Text,
        capacity -> Integer,
        status -> Text,
        lat -> Nullable<Double>,
        lng -> Nullable<Double>,
        speed -> Nullable<Double>,
        heading -> Nullable<Double>,
        location_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        unit_type -> Nullable<Text>,
    }
}

diesel::table! {
    crowd_events (id) {
        id -> Text,
        name -> Text,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    crowd_zones (event_id, id) {
        event_id -> Text,
        id -> Text,
        name -> Text,
        capacity -> BigInt,
        threshold -> BigInt,
        south -> Double,
        west -> Double,
        north -> Double,
        east -> Double,
    }
}

diesel::table! {
    crowd_counts (event_id, zone_id, camera_id) {
        event_id -> Text,
        zone_id -> Text,
        camera_id -> Text,
        count -> BigInt,
        at -> Timestamp,
    }
}

diesel::table! {
    crowd_alerts (id) {
        id -> Text,
        event_id -> Text,
        zone_id -> Text,
        severity -> Text,
        status -> Text,
        message -> Text,
        count -> BigInt,
        created_at -> Timestamp,
        resolved_at -> Nullable<Timestamp>,
        resolved_by -> Nullable<Text>,
    }
}

diesel::table! {
    crowd_pings (event_id, device_id) {
        event_id -> Text,
        device_id -> Text,
        lat -> Double,
        lng -> Double,
        at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    crowd_actions (id) {
        id -> Text,
        event_id -> Text,
        command -> Text,
        zone_id -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    crowd_reports (id) {
        id -> Text,
        event_id -> Text,
        message -> Text,
        kind -> Text,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    emergencies (request_id) {
        request_id -> Text,
        kind -> Text,
        description -> Text,
        severity -> Text,
        lat -> Double,
        lng -> Double,
        status -> Text,
        unit_id -> Nullable<Text>,
        reported_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (sub, key) {
        sub -> Text,
        key -> Text,
        response -> Nullable<Text>,
        node -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    incidents (id) {
        id -> Text,
        order_id -> Text,
        driver_id -> Nullable<Text>,
        reported_by -> Text,
        kind -> Text,
        comment -> Nullable<Text>,
        risk_score -> Double,
        risk_source -> Text,
        action_taken -> Text,
        old_driver_id -> Nullable<Text>,
        new_driver_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    order_exclusions (order_id, driver_id) {
        order_id -> Text,
        driver_id -> Text,
        reason -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    orders (id) {
        id -> Text,
        status -> Text,
        driver_id -> Nullable<Text>,
        fleet -> Text,
        priority -> Text,
        pickup_lat -> Double,
        pickup_lng -> Double,
        dropoff_lat -> Double,
        dropoff_lng -> Double,
        version -> BigInt,
        accepted_at -> Nullable<Timestamp>,
        eta -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        customer_id -> Nullable<Text>,
        partner_id -> Nullable<Text>,
    }
}

diesel::table! {
    room_events (room, seq) {
        room -> Text,
        seq -> BigInt,
        id -> Text,
        payload -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    room_seqs (room) {
        room -> Text,
        seq -> BigInt,
    }
}

diesel::table! {
    sos_alerts (alert_id) {
        alert_id -> Text,
        driver_id -> Text,
        fleet -> Text,
        lat -> Double,
        lng -> Double,
        message -> Nullable<Text>,
        created_at -> Timestamp,
        resolved_at -> Nullable<Timestamp>,
        resolved_by -> Nullable<Text>,
    }
}

diesel::table! {
    socketio_sockets (sid) {
        sid -> Text,
        sub -> Text,
        generation -> BigInt,
        disconnected_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    track_points (driver_id, at) {
        driver_id -> Text,
        at -> Timestamp,
        lat -> Double,
        lng -> Double,
        speed -> Nullable<Double>,
        heading -> Nullable<Double>,
    }
}

diesel::joinable!(orders -> drivers (driver_id));

diesel::allow_tables_to_appear_in_same_query!(
    crowd_actions,
    crowd_alerts,
    crowd_counts,
    crowd_events,
    crowd_pings,
    crowd_reports,
    crowd_zones,
    audit,
    drivers,
    emergencies,
    idempotency_keys,
    incidents,
    order_exclusions,
    orders,
    room_events,
    room_seqs,
    socketio_sockets,
    sos_alerts,
    track_points,
);
