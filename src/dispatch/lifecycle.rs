//! Legal order status transitions: which status an order may move to from the one it is in.

use crate::protocol::OrderStatus;

/// Whether an order may go from `from` to `to`; the error says which move was refused.
pub fn check_transition(from: OrderStatus, to: OrderStatus) -> Result<(), String> {
    use OrderStatus::*;
    let legal = match from {
        Pending => matches!(to, Assigned | Cancelled),
        Assigned => matches!(to, Assigned | Pending | PickedUp | Cancelled),
        PickedUp => matches!(
            to,
            OutForDelivery | Delivered | Assigned | Pending | Cancelled
        ),
        OutForDelivery => matches!(to, Delivered | Assigned | Pending | Cancelled),
        Delivered | Cancelled => false,
    };
    if legal {
        Ok(())
    } else {
        Err(format!(
            "order cannot go from {} to {}",
            from.as_str(),
            to.as_str()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    const LEGAL: &[(OrderStatus, OrderStatus)] = &[
        (Pending, Assigned),
        (Pending, Cancelled),
        (Assigned, Assigned),
        (Assigned, Pending),
        (Assigned, PickedUp),
        (Assigned, Cancelled),
        (PickedUp, OutForDelivery),
        (PickedUp, Delivered),
        (PickedUp, Assigned),
        (PickedUp, Pending),
        (PickedUp, Cancelled),
        (OutForDelivery, Delivered),
        (OutForDelivery, Assigned),
        (OutForDelivery, Pending),
        (OutForDelivery, Cancelled),
    ];

    #[test]
    fn every_legal_transition_is_allowed() {
        for &(from, to) in LEGAL {
            assert_eq!(check_transition(from, to), Ok(()), "{from} -> {to}");
        }
    }

    #[test]
    fn every_transition_not_listed_as_legal_is_refused() {
        for &from in OrderStatus::ALL {
            for &to in OrderStatus::ALL {
                if !LEGAL.contains(&(from, to)) {
                    assert!(check_transition(from, to).is_err(), "{from} -> {to}");
                }
            }
        }
    }

    #[test]
    fn terminal_states_refuse_every_transition() {
        for from in [Delivered, Cancelled] {
            for &to in OrderStatus::ALL {
                assert!(check_transition(from, to).is_err(), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn a_pending_order_cannot_be_delivered_directly() {
        assert_eq!(
            check_transition(Pending, Delivered),
            Err("order cannot go from pending to delivered".to_string())
        );
    }

    #[test]
    fn an_assigned_order_cannot_skip_the_pickup() {
        assert_eq!(
            check_transition(Assigned, OutForDelivery),
            Err("order cannot go from assigned to out_for_delivery".to_string())
        );
    }

    #[test]
    fn a_delivered_order_cannot_be_picked_up_again() {
        assert_eq!(
            check_transition(Delivered, PickedUp),
            Err("order cannot go from delivered to picked_up".to_string())
        );
    }

    #[test]
    fn a_pending_order_cannot_stay_pending() {
        let err = check_transition(Pending, Pending).err().unwrap_or_default();
        assert!(err.contains("pending to pending"), "{err}");
    }
}
