//! A REST request's body must arrive in time: in full within a total
//! deadline, and no slower than a minimum rate, so a client that sends most
//! of a body and then stalls holds neither memory nor a connection for long.
//! A late body fails with `BodyTimedOut`, which the extractors answer 408
//! `request_timeout`; hyper then closes the HTTP/1 connection (its request
//! was not read to the end).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// How far behind the minimum rate a body may fall: its first bytes may
/// take this long, and a pause this long is forgiven.
const GRACE: Duration = Duration::from_secs(2);

/// The bounds on one body.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline {
    pub total: Duration,
    /// Bytes per second, after `GRACE`.
    pub min_rate: u64,
}

impl BodyDeadline {
    /// `request` with its body under these bounds, counted from now.
    pub fn apply(self, request: Request) -> Request {
        request.map(|body| {
            Body::new(TimedBody {
                body,
                bounds: self,
                started: Instant::now(),
                received: 0,
                timer: None,
                timed_out: false,
            })
        })
    }

    /// When a body that started at `started` and has `received` bytes so far
    /// is late.
    fn due(self, started: Instant, received: u64) -> Instant {
        let by_rate = GRACE + Duration::from_secs_f64(received as f64 / self.min_rate as f64);
        started + by_rate.min(self.total)
    }
}

/// The body was too slow (the cause inside the extractors' rejection).
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// Whether `err` (or anything that caused it) is a `BodyTimedOut`.
pub fn timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if err.is::<BodyTimedOut>() {
            return true;
        }
        cause = err.source();
    }
    false
}

struct TimedBody {
    body: Body,
    bounds: BodyDeadline,
    started: Instant,
    received: u64,
    /// Set on the first poll, moved on with every chunk.
    timer: Option<Pin<Box<Sleep>>>,
    timed_out: bool,
}

impl HttpBody for TimedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if self.timed_out {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.received += data.len() as u64;
                    let due = self.bounds.due(self.started, self.received);
                    if let Some(timer) = self.timer.as_mut() {
                        timer.as_mut().reset(due);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => Poll::Ready(other),
            Poll::Pending => {
                let due = self.bounds.due(self.started, self.received);
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.timed_out = true;
                metrics::counter!("palaver_http_body_timeouts_total").increment(1);
                Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.timed_out || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    /// A body whose chunks come from a channel; it stalls while the channel
    /// is open and empty.
    fn channel_body() -> (futures::channel::mpsc::UnboundedSender<bytes::Bytes>, Body) {
        let (tx, rx) = futures::channel::mpsc::unbounded::<bytes::Bytes>();
        let body = Body::from_stream(rx.map(Ok::<_, std::io::Error>));
        (tx, body)
    }

    fn timed(body: Body, bounds: BodyDeadline) -> axum::body::BodyDataStream {
        let request = Request::new(body);
        bounds.apply(request).into_body().into_data_stream()
    }

    const BOUNDS: BodyDeadline = BodyDeadline {
        total: Duration::from_secs(10),
        min_rate: 1000,
    };

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_fails_once_it_falls_behind_the_minimum_rate() {
        let (tx, body) = channel_body();
        let mut body = timed(body, BOUNDS);
        tx.unbounded_send(bytes::Bytes::from(vec![0; 3000]))
            .unwrap();
        let started = Instant::now();
        assert_eq!(body.next().await.unwrap().unwrap().len(), 3000);
        let err = body.next().await.unwrap().unwrap_err();
        assert!(timed_out(&err), "{err}");
        // 3000 bytes at 1000 B/s buy 3 s after the 2 s grace.
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_trickles_fails_at_the_total_deadline() {
        let (tx, body) = channel_body();
        let mut body = timed(body, BOUNDS);
        let started = Instant::now();
        let trickle = tokio::spawn(async move {
            // Well above the minimum rate, forever.
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if tx.unbounded_send(bytes::Bytes::from(vec![0; 500])).is_err() {
                    return;
                }
            }
        });
        let err = loop {
            match body.next().await.unwrap() {
                Ok(_) => continue,
                Err(err) => break err,
            }
        };
        assert!(timed_out(&err));
        assert_eq!(started.elapsed(), BOUNDS.total);
        drop(body);
        trickle.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_in_time_is_read_whole() {
        let (tx, body) = channel_body();
        let mut body = timed(body, BOUNDS);
        tx.unbounded_send(bytes::Bytes::from_static(b"{}")).unwrap();
        drop(tx);
        assert_eq!(&body.next().await.unwrap().unwrap()[..], b"{}");
        assert!(body.next().await.is_none());
    }
}
