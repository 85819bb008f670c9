//! Rate limits: how often one caller (an address, a user, an account at an
//! address) may do one kind of thing, and the growing delay after failed logins.
//!
//! The in-memory limits (`Throttle`) are per node; the login back-off lives
//! in the store, so switching node does not reset it.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};

use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::time::Timestamp;

/// A rate: `count` per `period` on average, with bursts of up to `burst`.
/// Written `5/s`, `20/min burst 40`, `10/h`; `off` disables a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub period: Duration,
    pub burst: NonZeroU32,
}

impl Rate {
    pub const fn new(count: u32, period: Duration, burst: u32) -> Self {
        match (NonZeroU32::new(count), NonZeroU32::new(burst)) {
            (Some(count), Some(burst)) => Self {
                count,
                period,
                burst,
            },
            _ => panic!("a rate's count and burst are at least 1"),
        }
    }

    pub fn quota(&self) -> Quota {
        // One cell replenishes every period / count.
        let every = self.period / self.count.get();
        Quota::with_period(every.max(Duration::from_nanos(1)))
            .expect("a positive period")
            .allow_burst(self.burst)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.count)?;
        if self.burst != self.count {
            write!(f, " burst {}", self.burst)?;
        }
        Ok(())
    }
}

/// A limit that may be switched off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit(pub Option<Rate>);

impl FromStr for RateLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "off" {
            return Ok(RateLimit(None));
        }
        let bad = || format!("{text:?}: expected COUNT/UNIT [burst N] (unit s, min or h) or off");
        let mut words = text.split_whitespace();
        let (count, unit) = words
            .next()
            .and_then(|w| w.split_once('/'))
            .ok_or_else(bad)?;
        let count: u32 = count.parse().map_err(|_| bad())?;
        let period = match unit {
            "s" => Duration::from_secs(1),
            "min" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        let burst = match (words.next(), words.next(), words.next()) {
            (None, _, _) => count,
            (Some("burst"), Some(n), None) => n.parse().map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        if count == 0 || burst == 0 {
            return Err(format!(
                "{text:?}: count and burst must be at least 1 (or use off)"
            ));
        }
        Ok(RateLimit(Some(Rate::new(count, period, burst))))
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(rate) => rate.fmt(f),
            None => f.write_str("off"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for RateLimit {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Where a request comes from, as rate limits count it: an IPv4 address, or
/// an IPv6 /64 (one subscriber usually holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(IpAddr);

impl ClientAddr {
    pub fn new(ip: IpAddr) -> Self {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    IpAddr::V6(Ipv6Addr::from(prefix))
                }
            },
            v4 => v4,
        };
        Self(ip)
    }
}

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
            IpAddr::V4(v4) => v4.fmt(f),
        }
    }
}

/// One in-memory rate limit, keyed by who is limited.
pub struct Throttle<K: Hash + Eq + Clone> {
    /// Names the limit in metrics (`palaver_rate_limited_total{limit}`).
    name: &'static str,
    limiter: Option<DefaultKeyedRateLimiter<K>>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    pub fn new(name: &'static str, limit: RateLimit) -> Self {
        Self {
            name,
            limiter: limit
                .0
                .map(|rate| governor::RateLimiter::keyed(rate.quota())),
        }
    }

    /// Counts one attempt by `key`; `RateLimited` (with how long to wait)
    /// once its budget is spent.
    pub fn check(&self, key: &K) -> Result<()> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(key)
            .map_err(|not_until| refused(self.name, limiter.clock(), not_until))
    }

    /// Forgets every key whose budget is full again, so memory follows the
    /// callers of the last period, not every caller ever seen.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// One in-memory rate limit on one thing (a connection's frames): the
/// `Throttle` of a single key, without the map.
pub struct SingleThrottle {
    name: &'static str,
    limiter: Option<DefaultDirectRateLimiter>,
}

impl SingleThrottle {
    pub fn new(name: &'static str, limit: RateLimit) -> Self {
        Self {
            name,
            limiter: limit
                .0
                .map(|rate| governor::RateLimiter::direct(rate.quota())),
        }
    }

    /// Counts one attempt; `RateLimited` once the budget is spent.
    pub fn check(&self) -> Result<()> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check()
            .map_err(|not_until| refused(self.name, limiter.clock(), not_until))
    }
}

/// A limit's refusal: counted in `palaver_rate_limited_total{limit}`, with
/// how long to wait.
fn refused(
    name: &'static str,
    clock: &DefaultClock,
    not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>,
) -> Error {
    metrics::counter!("palaver_rate_limited_total", "limit" => name).increment(1);
    Error::RateLimited {
        retry_after: not_until.wait_time_from(clock.now()),
    }
}

/// The delay after consecutive failed logins of one account from one
/// address: none for the first `free` failures, then 1 s, doubling with each
/// failure up to `max`. A delay, never a lockout: the right password is
/// accepted once it is over, and it ends the streak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginBackoff {
    pub free: u32,
    pub max: Duration,
}

impl Default for LoginBackoff {
    fn default() -> Self {
        Self {
            free: 5,
            max: Duration::from_secs(300),
        }
    }
}

/// A streak of failed logins is forgotten this long after its last failure.
pub const LOGIN_FAILURES_FORGOTTEN_AFTER: Duration = Duration::from_secs(24 * 3600);

impl LoginBackoff {
    /// How long after the last of `failures` consecutive failures the next
    /// attempt is accepted.
    pub fn delay(&self, failures: u32) -> Duration {
        if failures < self.free {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free).min(30);
        Duration::from_secs(1u64 << doublings).min(self.max)
    }

    /// `Err(RateLimited)` while the streak's delay is running.
    pub fn check(&self, failures: u32, last_failed_at: Timestamp, now: Timestamp) -> Result<()> {
        let ends = last_failed_at.0 + self.delay(failures).as_millis() as i64;
        if now.0 < ends {
            metrics::counter!("palaver_rate_limited_total", "limit" => "login_backoff")
                .increment(1);
            return Err(Error::RateLimited {
                retry_after: Duration::from_millis((ends - now.0) as u64),
            });
        }
        Ok(())
    }
}

/// Every rate limit of the domain, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Login attempts per client address, whatever the account.
    pub login_per_address: RateLimit,
    pub login_backoff: LoginBackoff,
    pub register_per_address: RateLimit,
    /// Joining by code (each attempt, right or wrong code or password).
    pub join_per_user: RateLimit,
    pub join_per_address: RateLimit,
    /// Messages posted, whatever the transport.
    pub send_per_user: RateLimit,
    /// Every step of a password reset (request, resend, confirm, complete).
    pub password_reset_per_address: RateLimit,
    /// Refreshes and logouts (a refresh token presented) per client address.
    pub refresh_per_address: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        let minute = Duration::from_secs(60);
        Self {
            login_per_address: RateLimit(Some(Rate::new(30, minute, 30))),
            login_backoff: LoginBackoff::default(),
            register_per_address: RateLimit(Some(Rate::new(10, Duration::from_secs(3600), 10))),
            join_per_user: RateLimit(Some(Rate::new(10, minute, 10))),
            join_per_address: RateLimit(Some(Rate::new(30, minute, 30))),
            send_per_user: RateLimit(Some(Rate::new(10, Duration::from_secs(1), 30))),
            password_reset_per_address: RateLimit(Some(Rate::new(10, minute, 10))),
            // A client refreshes every few minutes; many share a NAT's address.
            refresh_per_address: RateLimit(Some(Rate::new(120, minute, 120))),
        }
    }
}

impl RateLimits {
    /// Nothing limited: for benchmarks and tests that are about something else.
    pub fn off() -> Self {
        Self {
            login_per_address: RateLimit(None),
            login_backoff: LoginBackoff {
                free: u32::MAX,
                max: Duration::ZERO,
            },
            register_per_address: RateLimit(None),
            join_per_user: RateLimit(None),
            join_per_address: RateLimit(None),
            send_per_user: RateLimit(None),
            password_reset_per_address: RateLimit(None),
            refresh_per_address: RateLimit(None),
        }
    }
}

/// The domain's in-memory limits, shared by its services.
pub struct Throttles {
    pub login_per_address: Throttle<ClientAddr>,
    pub login_backoff: LoginBackoff,
    pub register_per_address: Throttle<ClientAddr>,
    pub join_per_user: Throttle<UserId>,
    pub join_per_address: Throttle<ClientAddr>,
    pub send_per_user: Throttle<UserId>,
    pub password_reset_per_address: Throttle<ClientAddr>,
    pub refresh_per_address: Throttle<ClientAddr>,
}

/// How often idle keys are forgotten.
pub const FORGET_IDLE_EVERY: Duration = Duration::from_secs(30);

impl Throttles {
    pub fn new(limits: &RateLimits) -> Self {
        Self {
            login_per_address: Throttle::new("login_per_address", limits.login_per_address),
            login_backoff: limits.login_backoff,
            register_per_address: Throttle::new(
                "register_per_address",
                limits.register_per_address,
            ),
            join_per_user: Throttle::new("join_per_user", limits.join_per_user),
            join_per_address: Throttle::new("join_per_address", limits.join_per_address),
            send_per_user: Throttle::new("send_per_user", limits.send_per_user),
            password_reset_per_address: Throttle::new(
                "password_reset_per_address",
                limits.password_reset_per_address,
            ),
            refresh_per_address: Throttle::new("refresh_per_address", limits.refresh_per_address),
        }
    }

    pub fn forget_idle(&self) {
        self.login_per_address.forget_idle();
        self.register_per_address.forget_idle();
        self.password_reset_per_address.forget_idle();
        self.refresh_per_address.forget_idle();
        self.join_per_user.forget_idle();
        self.join_per_address.forget_idle();
        self.send_per_user.forget_idle();
    }

    /// Forgets idle keys every `FORGET_IDLE_EVERY` until the throttles are dropped.
    pub fn spawn_forgetting(self: &std::sync::Arc<Self>) -> tokio::task::JoinHandle<()> {
        let throttles = std::sync::Arc::downgrade(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(FORGET_IDLE_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                match throttles.upgrade() {
                    Some(throttles) => throttles.forget_idle(),
                    None => return,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_and_without_burst() {
        let rate = |text: &str| text.parse::<RateLimit>().unwrap().0.unwrap();
        assert_eq!(rate("5/s"), Rate::new(5, Duration::from_secs(1), 5));
        assert_eq!(
            rate("20/min burst 40"),
            Rate::new(20, Duration::from_secs(60), 40)
        );
        assert_eq!(rate(" 10/h "), Rate::new(10, Duration::from_secs(3600), 10));
        assert_eq!("off".parse::<RateLimit>().unwrap(), RateLimit(None));
        for bad in [
            "",
            "5",
            "5/day",
            "0/s",
            "5/s burst",
            "5/s burst 0",
            "5/s x 3",
            "-1/s",
        ] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad:?} parsed");
        }
        for text in ["5/s", "20/min burst 40", "10/h", "off"] {
            assert_eq!(text.parse::<RateLimit>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn a_throttle_allows_the_burst_then_says_how_long_to_wait() {
        let throttle = Throttle::new("test", "3/min".parse().unwrap());
        for _ in 0..3 {
            throttle.check(&1).unwrap();
        }
        match throttle.check(&1) {
            Err(Error::RateLimited { retry_after }) => {
                assert!(retry_after > Duration::from_secs(15));
                assert!(retry_after <= Duration::from_secs(20));
            }
            other => panic!("expected rate_limited, got {other:?}"),
        }
        // Another key has a budget of its own.
        throttle.check(&2).unwrap();
        let off = Throttle::new("off", RateLimit(None));
        for _ in 0..1000 {
            off.check(&1).unwrap();
        }
    }

    #[test]
    fn the_login_backoff_starts_after_the_free_failures_and_doubles_up_to_its_cap() {
        let backoff = LoginBackoff {
            free: 3,
            max: Duration::from_secs(60),
        };
        let delays: Vec<u64> = (0..12).map(|n| backoff.delay(n).as_secs()).collect();
        assert_eq!(delays, [0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(60));
        let failed = Timestamp(1_000_000);
        assert!(backoff.check(2, failed, failed).is_ok());
        match backoff.check(5, failed, Timestamp(failed.0 + 1500)) {
            Err(Error::RateLimited { retry_after }) => {
                assert_eq!(retry_after, Duration::from_millis(2500))
            }
            other => panic!("expected rate_limited, got {other:?}"),
        }
        assert!(backoff.check(5, failed, Timestamp(failed.0 + 4000)).is_ok());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix_and_mapped_ipv4_as_ipv4() {
        let a = ClientAddr::new("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = ClientAddr::new("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = ClientAddr::new("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(
            ClientAddr::new("::ffff:192.0.2.7".parse().unwrap()),
            ClientAddr::new("192.0.2.7".parse().unwrap())
        );
    }
}
