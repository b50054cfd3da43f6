//! The row write of each emergency step, inside the desk's transaction: conditional on the
//! status the step starts from, so a step whose precondition no longer holds changes nothing and
//! answers `conflict`.

use crate::db::models::{to_db, EmergencyRow};
use crate::db::{self, queries};
use crate::error::AppError;
use crate::protocol::{DriverId, Emergency, EmergencyStatus};

/// What a step writes to its emergency's row.
pub(super) enum Write {
    /// The new emergency, pending; assigned too in the same transaction when `then_assign`.
    Insert { then_assign: bool },
    /// A pending emergency to the step's unit.
    Assign,
    /// Completed or cancelled, from one of `from`.
    Finish { from: &'static [&'static str] },
}

/// The row write of a step, conditional on the status it starts from.
pub(super) fn write_step(
    c: &mut db::DbConnection,
    next: &Emergency,
    unit: Option<&DriverId>,
    write: Write,
) -> Result<(), AppError> {
    let id = next.request_id.as_str();
    let at = to_db(next.updated_at);
    let assign = |c: &mut db::DbConnection| -> Result<(), AppError> {
        let unit = unit.ok_or_else(|| AppError::internal("an assignment without a unit"))?;
        if queries::emergencies::assign(c, id, unit.as_str(), at)? == 0 {
            return Err(AppError::conflict(format!("emergency {id} is not PENDING")));
        }
        // The unique index refuses a second as well; this says it in words.
        if queries::emergencies::assigned_to(c, unit.as_str())? > 1 {
            return Err(AppError::conflict(format!(
                "unit {unit} is on another emergency"
            )));
        }
        Ok(())
    };
    match write {
        Write::Insert { then_assign } => {
            let mut row = EmergencyRow::from(next);
            row.status = EmergencyStatus::Pending.as_str().to_string();
            row.unit_id = None;
            queries::emergencies::insert(c, &row)?;
            if then_assign {
                assign(c)?;
            }
        }
        Write::Assign => assign(c)?,
        Write::Finish { from } => {
            if queries::emergencies::finish(c, id, from, next.status.as_str(), at)? == 0 {
                return Err(AppError::conflict(format!(
                    "emergency {id} changed meanwhile; reload it"
                )));
            }
        }
    }
    Ok(())
}

impl EmergencyStatus {
    /// Pending and assigned emergencies are open; completed and cancelled ones never change.
    pub fn is_open(self) -> bool {
        matches!(self, EmergencyStatus::Pending | EmergencyStatus::Assigned)
    }
}
