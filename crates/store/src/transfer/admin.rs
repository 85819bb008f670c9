//! The rows of server administration's tables (`sql/copy_admin.rs` reads
//! and writes them): admins, suspensions, reports and the audit log.

/// A row of `admins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRow {
    pub user_id: i64,
    pub granted_at: i64,
    pub granted_by: Option<i64>,
}

/// A row of `suspensions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuspensionRow {
    pub user_id: i64,
    pub reason: String,
    pub ends_at: Option<i64>,
    pub suspended_by: Option<i64>,
    pub suspended_at: i64,
}

/// A row of `reports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub id: i64,
    pub room_id: i64,
    pub seq: i64,
    pub reporter_id: i64,
    pub reason: String,
    pub created_at: i64,
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<i64>,
    pub resolution: Option<String>,
}

/// A row of `admin_audit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub id: i64,
    pub acted_at: i64,
    pub admin_id: Option<i64>,
    pub action: String,
    pub target_kind: String,
    pub target_id: i64,
    pub target_seq: Option<i64>,
    pub reason: Option<String>,
    pub detail: Option<String>,
}
