// Version 2 of the contract added `AccountClosed` to the topic: a handler
// written for version 1 no longer compiles, and the error names the method.
use protobus_fixtures::v2::EvoAccountsHandler;
use protobus_fixtures::v2::evo::accounts::AccountOpened;
use protobus_runtime::{EventContext, HandlerError};

struct Accounts;

impl EvoAccountsHandler for Accounts {
    async fn account_opened(&self, _: AccountOpened, _: &EventContext<'_>) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {}
