//! The server admin API (`/api/v1/admin/…`, server admins only) and a
//! member's report of a message.

use palaver_protocol::rest::admin::{
    AdminDeleteUserRequest, AdminInfo, AdminReasonRequest, AdminRoomPage, AdminTransferRequest,
    AdminUserPage, AuditEntryInfo, AuditPage, EraseResult, ReportPage, ReportReceipt,
    ReportRequest, ResolveReportRequest, SuspendRequest, TakeDownRequest,
};
use reqwest::Method;

use super::{url_with_query, Client};
use crate::Result;

impl Client {
    /// Reports message `seq` of `room` to the server's admins.
    pub async fn report_message(&self, room: i64, seq: u64, reason: &str) -> Result<ReportReceipt> {
        let body = ReportRequest {
            reason: reason.into(),
        };
        let path = format!("/api/v1/rooms/{room}/messages/{seq}/report");
        self.call(Method::POST, &path, Some(&body)).await
    }

    pub async fn admin_admins(&self) -> Result<Vec<AdminInfo>> {
        self.call::<(), _>(Method::GET, "/api/v1/admin/admins", None)
            .await
    }

    /// Accounts whose username or display name starts with `q`, by id.
    pub async fn admin_users(
        &self,
        q: &str,
        after: Option<i64>,
        limit: Option<u32>,
    ) -> Result<AdminUserPage> {
        let path = page_path("/api/v1/admin/users", q, after, limit);
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// Suspends `user` until `until` (RFC 3339; `None`: until lifted).
    pub async fn suspend_user(
        &self,
        user: i64,
        reason: &str,
        until: Option<&str>,
    ) -> Result<AuditEntryInfo> {
        let body = SuspendRequest {
            reason: reason.into(),
            until: until.map(Into::into),
        };
        let path = format!("/api/v1/admin/users/{user}/suspend");
        self.call(Method::POST, &path, Some(&body)).await
    }

    pub async fn unsuspend_user(&self, user: i64, reason: Option<&str>) -> Result<AuditEntryInfo> {
        let path = format!("/api/v1/admin/users/{user}/unsuspend");
        self.call(Method::POST, &path, Some(&reason_body(reason)))
            .await
    }

    /// Deletes `user`'s account as its owner could.
    pub async fn admin_delete_user(
        &self,
        user: i64,
        reason: &str,
        erase: bool,
    ) -> Result<AuditEntryInfo> {
        let body = AdminDeleteUserRequest {
            reason: reason.into(),
            erase,
        };
        let path = format!("/api/v1/admin/users/{user}/delete");
        self.call(Method::POST, &path, Some(&body)).await
    }

    /// Blanks up to 500 of `user`'s messages; call again while `more`.
    pub async fn erase_messages(&self, user: i64, reason: Option<&str>) -> Result<EraseResult> {
        let path = format!("/api/v1/admin/users/{user}/erase-messages");
        self.call(Method::POST, &path, Some(&reason_body(reason)))
            .await
    }

    /// Rooms whose name starts with `q`, by id.
    pub async fn admin_rooms(
        &self,
        q: &str,
        after: Option<i64>,
        limit: Option<u32>,
    ) -> Result<AdminRoomPage> {
        let path = page_path("/api/v1/admin/rooms", q, after, limit);
        self.call::<(), _>(Method::GET, &path, None).await
    }

    pub async fn take_down_room(&self, room: i64, reason: &str) -> Result<AuditEntryInfo> {
        let body = TakeDownRequest {
            reason: reason.into(),
        };
        let path = format!("/api/v1/admin/rooms/{room}/take-down");
        self.call(Method::POST, &path, Some(&body)).await
    }

    pub async fn admin_transfer_room(
        &self,
        room: i64,
        to: i64,
        reason: Option<&str>,
    ) -> Result<AuditEntryInfo> {
        let body = AdminTransferRequest {
            user_id: to,
            reason: reason.map(Into::into),
        };
        let path = format!("/api/v1/admin/rooms/{room}/owner");
        self.call(Method::POST, &path, Some(&body)).await
    }

    pub async fn admin_delete_message(
        &self,
        room: i64,
        seq: u64,
        reason: Option<&str>,
    ) -> Result<AuditEntryInfo> {
        let path = format!("/api/v1/admin/rooms/{room}/messages/{seq}/delete");
        self.call(Method::POST, &path, Some(&reason_body(reason)))
            .await
    }

    /// Reports: `status` is `open`, `resolved` or `all`.
    pub async fn reports(
        &self,
        status: &str,
        after: Option<i64>,
        limit: Option<u32>,
    ) -> Result<ReportPage> {
        let after = after.map(|a| a.to_string());
        let limit = limit.map(|l| l.to_string());
        let mut query = vec![("status", status)];
        query.extend(after.as_deref().map(|a| ("after", a)));
        query.extend(limit.as_deref().map(|l| ("limit", l)));
        let path = url_with_query("/api/v1/admin/reports", &query);
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// Resolves a report: `action` is `dismiss`, `delete_message` or `suspend_sender`.
    pub async fn resolve_report(
        &self,
        report: i64,
        action: &str,
        reason: Option<&str>,
        until: Option<&str>,
    ) -> Result<AuditEntryInfo> {
        let body = ResolveReportRequest {
            action: action.into(),
            reason: reason.map(Into::into),
            until: until.map(Into::into),
        };
        let path = format!("/api/v1/admin/reports/{report}/resolve");
        self.call(Method::POST, &path, Some(&body)).await
    }

    /// The audit log, newest first, before the cursor `before`.
    pub async fn audit(&self, before: Option<i64>, limit: Option<u32>) -> Result<AuditPage> {
        let before = before.map(|b| b.to_string());
        let limit = limit.map(|l| l.to_string());
        let mut query = Vec::new();
        query.extend(before.as_deref().map(|b| ("before", b)));
        query.extend(limit.as_deref().map(|l| ("limit", l)));
        let path = url_with_query("/api/v1/admin/audit", &query);
        self.call::<(), _>(Method::GET, &path, None).await
    }
}

fn reason_body(reason: Option<&str>) -> AdminReasonRequest {
    AdminReasonRequest {
        reason: reason.map(Into::into),
    }
}

/// `path` with `q`, and `after` and `limit` when given, as its query.
fn page_path(path: &str, q: &str, after: Option<i64>, limit: Option<u32>) -> String {
    let (after, limit) = (after.map(|a| a.to_string()), limit.map(|l| l.to_string()));
    let mut query = vec![("q", q)];
    query.extend(after.as_deref().map(|a| ("after", a)));
    query.extend(limit.as_deref().map(|l| ("limit", l)));
    url_with_query(path, &query)
}
