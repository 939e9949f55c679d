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
