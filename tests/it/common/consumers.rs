//! Typed consumers for tests: one running in a task, a counting handler.

use protobus::contract::ShopOrdersHandler;
use protobus_runtime::{EventContext, HandlerError};

/// A consumer running in a task of its own until [`RunningConsumer::stop`].
pub struct RunningConsumer {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), protobus_runtime::Error>>,
}

/// Runs `consumer` in a task until the returned handle is stopped.
pub fn start_consumer<D>(consumer: protobus_runtime::EventConsumer<D>) -> RunningConsumer
where
    D: protobus_runtime::Dispatch + 'static,
{
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(consumer.run(async move {
        let _ = stopped.await;
    }));
    RunningConsumer { stop, task }
}

impl RunningConsumer {
    /// Stops the consumer (it commits and leaves its group); panics unless it
    /// ran cleanly.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task
            .await
            .expect("the consumer task")
            .expect("the consumer ran cleanly");
    }
}

/// A handler of the orders topic that counts the events it took.
#[derive(Clone, Default)]
pub struct Count(pub std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Count {
    pub fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn tick(&self) -> Result<(), HandlerError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

impl ShopOrdersHandler for Count {
    async fn order_placed(
        &self,
        _: protobus::contract::shop::orders::v1::OrderPlaced,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.tick()
    }
    async fn order_paid(
        &self,
        _: protobus::contract::shop::orders::v1::OrderPaid,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.tick()
    }
    async fn order_shipped(
        &self,
        _: protobus::contract::shop::orders::v1::OrderShipped,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.tick()
    }
}

/// A handler of the orders topic that records every event id it took, as
/// many times as it took it.
#[derive(Clone, Default)]
pub struct Recorder(pub std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>>);

impl Recorder {
    /// Takes the event of `context`.
    pub fn record(&self, context: &EventContext<'_>) -> Result<(), HandlerError> {
        let id = context.event_id().unwrap_or_default().to_owned();
        *self.0.lock().unwrap().entry(id).or_default() += 1;
        Ok(())
    }

    /// Every id taken, once per time it was taken.
    pub fn handled(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(id, n)| std::iter::repeat_n(id.clone(), *n as usize))
            .collect()
    }

    /// Whether every id of `ids` was taken.
    pub fn has_all<'a>(&self, mut ids: impl Iterator<Item = &'a String>) -> bool {
        let seen = self.0.lock().unwrap();
        ids.all(|id| seen.contains_key(id))
    }
}

impl ShopOrdersHandler for Recorder {
    async fn order_placed(
        &self,
        _: protobus::contract::shop::orders::v1::OrderPlaced,
        context: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.record(context)
    }
    async fn order_paid(
        &self,
        _: protobus::contract::shop::orders::v1::OrderPaid,
        context: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.record(context)
    }
    async fn order_shipped(
        &self,
        _: protobus::contract::shop::orders::v1::OrderShipped,
        context: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        self.record(context)
    }
}
