//! The in-process bus of a single node: publishing delivers straight to the
//! node's own connection hub, in the publisher's order.
//!
//! There is no queue in between: the hub's delivery never blocks (it only
//! `try_send`s into bounded per-connection queues), so the message writer can
//! call it directly and per-room order is the writer's commit order.

use std::sync::Arc;

use palaver_domain::bus::{delivered, Bus, Delivery, EventSink, Publication};

pub struct LocalBus {
    sink: Arc<dyn EventSink>,
}

impl LocalBus {
    pub fn new(sink: Arc<dyn EventSink>) -> Self {
        Self { sink }
    }
}

impl Bus for LocalBus {
    fn publish(&self, events: Vec<Publication>) -> Delivery {
        for publication in &events {
            self.sink.deliver(&publication.event);
        }
        delivered()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use palaver_domain::events::DomainEvent;
    use palaver_domain::{RoomId, UserId};

    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<DomainEvent>>);

    impl EventSink for Recorder {
        fn deliver(&self, event: &DomainEvent) {
            self.0.lock().unwrap().push(event.clone());
        }
    }

    #[test]
    fn delivers_every_event_in_publish_order() {
        let recorder = Arc::new(Recorder::default());
        let bus = LocalBus::new(recorder.clone());
        let events: Vec<_> = (1..=3)
            .map(|n| DomainEvent::MemberLeft {
                room_id: RoomId(n),
                user_id: UserId(7),
            })
            .collect();
        let publications = events.iter().cloned().map(Publication::unencoded).collect();
        poll_once(bus.publish(publications)).unwrap();
        let seen = recorder.0.lock().unwrap().clone();
        assert_eq!(seen, events);
    }

    /// The publish future never suspends, so polling it once completes it.
    fn poll_once<F: std::future::Future>(fut: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut fut = std::pin::pin!(fut);
        match fut.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => panic!("local publish suspended"),
        }
    }
}
