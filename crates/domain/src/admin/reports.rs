//! Members report messages to the server's admins. Only a member of the
//! room may report one of its messages; anyone else learns exactly what a
//! room that does not exist tells them.

use super::{Admin, Report};
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId};
use crate::store::{NewReport, ReportFiled};
use crate::throttle::{Caller, ClientAddr, Operation, Per};
use crate::time::Timestamp;
use crate::values::Reason;

/// A filed report, and whether it was filed before (the reporter's report
/// of this message still open: that one, unchanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filed {
    pub report: Report,
    pub already_open: bool,
}

impl Admin {
    /// `reporter` reports message `seq` of `room` to the admins. Membership,
    /// the message and an open report of the same reporter are read again
    /// in the insert's transaction (`AdminStore::file_report`).
    pub async fn report_message(
        &self,
        reporter: UserId,
        room: RoomId,
        seq: u64,
        reason: &str,
        from: ClientAddr,
    ) -> Result<Filed> {
        let caller = Caller::user(reporter).from(from);
        self.throttles
            .charge_only(Operation::Report, caller, Per::User)?;
        let reason = Reason::parse(reason)?;
        // The address's budget is shared by everyone behind it: only a
        // report that can be filed spends it, so no one spends it for the
        // others with reports of rooms or messages that are not there.
        let member = self.store.member_role(room, reporter).await?.is_some();
        let live = (self.store.message(room, seq).await?).is_some_and(|m| m.deleted_at.is_none());
        match (member, live) {
            (false, _) => return Err(Error::NotFound("room")),
            (true, false) => return Err(Error::NotFound("message")),
            (true, true) => {}
        }
        self.throttles
            .charge_only(Operation::Report, caller, Per::Address)?;
        let filed = self
            .store
            .file_report(NewReport {
                room,
                seq,
                reporter,
                reason: reason.into_inner(),
                now: Timestamp::now(),
            })
            .await?;
        match filed {
            ReportFiled::Filed(report) => {
                tracing::info!(report = report.id, room = %room, seq, "message reported");
                Ok(Filed {
                    report,
                    already_open: false,
                })
            }
            ReportFiled::AlreadyOpen(report) => Ok(Filed {
                report,
                already_open: true,
            }),
            // Not found, as for every room operation: a stranger learns nothing.
            ReportFiled::NotMember => Err(Error::NotFound("room")),
            ReportFiled::NoMessage => Err(Error::NotFound("message")),
        }
    }
}
