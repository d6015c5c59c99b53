/**
 * `BatonApi` on the store in this process, with the local notion of identity. Locally
 * there is no GitHub to ask who someone is, so the acting person is the declared one
 * (`$BATON_USER`, `--as`) with admin permission; the flow's policy still applies (listed
 * users, self-approval, required counts).
 */
import type { ApproverFacts } from "../engine/types.js";
import { ServiceClient } from "../http/service-client.js";
import { BatonService } from "../runtime/index.js";
import type { Database } from "../store/database.js";

const LOCAL_FACTS: ApproverFacts = { permission: "admin", teams: [], codeowner: false };

export class DirectClient extends ServiceClient {
  constructor(db: Database, actor: string, service = new BatonService({ store: db })) {
    super({ store: db, service, actor, approverFacts: LOCAL_FACTS });
  }
}
