"""The closed set of error codes a rotation can end with: what each means, whether a later attempt can
succeed (transient), and what the operator does. Dashboards group by these codes and the README's runbook
lists them; a service's own code never reaches a record or an event unmapped (error_table.py maps them).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCode:
    name: str
    transient: bool
    meaning: str
    action: str


_CODES = (
    # -- answers of Azure, mapped by error_table.py ------------------------------------------------------
    ErrorCode("AuthenticationFailed", False,
              "a service refused the app's token (401): wrong tenant, cloud or audience",
              "check AZURE_CLOUD, ARM_ENDPOINT and the identity (AZURE_CLIENT_ID)"),
    ErrorCode("CredentialUnavailable", True,
              "no token could be obtained (managed identity endpoint down, or not signed in)",
              "retried; if it persists, check the app's managed identity (or `az login` for the CLI)"),
    ErrorCode("AuthorizationFailed", False,
              "the identity lacks a permission; the message names the missing action and scope",
              "grant the role named in the README's deployment checks (custom role on the account, Key Vault "
              "Secrets Officer on the vault, storage data roles)"),
    ErrorCode("AccountNotFound", False,
              "Resource Manager has no such subscription, resource group or Cosmos DB account",
              "fix the target's subscriptionId, resourceGroup or account; `rotate --dry-run` checks"),
    ErrorCode("ScopeLocked", False,
              "a resource lock (ReadOnly) on the account or a parent scope refuses the key operation; the "
              "message names the locked scope",
              "remove the ReadOnly lock, or exclude the account from rotation"),
    ErrorCode("AccountBusy", True,
              "Cosmos DB is running another operation on the account (412 PreconditionFailed)",
              "retried; nothing to do unless it lasts for hours"),
    ErrorCode("Throttled", True, "a service answered 429 for more than 10 minutes of Retry-After waits",
              "retried; if it persists, spread the fleet's rotations"),
    ErrorCode("ServiceUnavailable", True, "a service answered 5xx or timed out beyond the SDK's retries",
              "retried; check Azure status if it persists"),
    ErrorCode("ServiceUnreachable", True, "a service could not be reached (DNS, network, TLS)",
              "retried; check the app's outbound network and private endpoints"),
    ErrorCode("BadRequest", False, "a service refused the request as malformed (400)",
              "a setting is wrong or this is a product bug: the message says which service and why"),
    ErrorCode("UnexpectedServiceAnswer", False,
              "a service gave an answer the product does not know (the message quotes its status and code)",
              "read the message; report it if it is not explained by the settings"),
    ErrorCode("SecretDeleted", False,
              "the secret is deleted but recoverable in Key Vault (soft-delete): its name cannot be reused",
              "recover it (`az keyvault secret recover`) to keep its history, or purge it to start over"),
    ErrorCode("SecretRecovering", True, "Key Vault is recovering the deleted secret (409 ObjectIsBeingRecovered)",
              "retried"),
    ErrorCode("SecretDisabled", False, "the live secret version is disabled in Key Vault",
              "re-enable it (`az keyvault secret set-attributes --enabled true`), or publish a current "
              "version with `adopt`"),
    # -- conditions the product itself detects ------------------------------------------------------------
    ErrorCode("NoLiveSecret", False,
              "the secret does not exist: the product cannot know which key applications use, so it "
              "regenerates nothing",
              "adopt the account: `python -m cosmos_key_rotation adopt --target NAME --key-kind KIND` with the "
              "key applications use today (or declare liveKeyKind / LIVE_KEY_KIND)"),
    ErrorCode("KeyChangedOutside", False,
              "the live key was regenerated outside the product (portal, script): the secret holds a dead key",
              "publish the account's key as it is now: `adopt --force --key-kind <live kind>` (regenerates "
              "nothing), then check the applications"),
    ErrorCode("NoPreviousVersion", False, "rollback: the secret has no earlier enabled version to go back to",
              "nothing to roll back"),
    ErrorCode("PreviousKeyInvalid", False,
              "rollback: the earlier version's key was regenerated since; publishing it would publish a dead key",
              "roll forward instead: `rotate --force`"),
    ErrorCode("UnknownTarget", False, "no target of that name in the settings",
              "fix the name, or ROTATION_TARGETS"),
    ErrorCode("KeyKindIsLive", False,
              "the request asked to regenerate the key the secret publishes now, under the alternate strategy",
              "ask for the other key kind, or none"),
    ErrorCode("RegenerationFailed", True,
              "Resource Manager accepted the regeneration and the operation ended Failed or Canceled; the key "
              "did not change",
              "retried; if it persists, read the account's activity log"),
    ErrorCode("RegenerationTimedOut", False,
              "a regeneration handed to continuations had not ended after REGENERATION_TIMEOUT_MINUTES",
              "read the account's activity log; the next run finishes the rotation if Azure completes it later, "
              "without regenerating again"),
    ErrorCode("RegenerationUnconfirmed", True,
              "regenerateKey got no clear answer (a dropped connection or a 5xx) and keysMetadata did not show "
              "a new key within the wait",
              "retried: the next attempt reads keysMetadata before it sends anything, so it never regenerates "
              "twice"),
    ErrorCode("KeyNotUpdated", True,
              "the regeneration finished but the account still shows the old key (a lagging read)",
              "retried: the next attempt finishes the rotation without regenerating again"),
    ErrorCode("KeyMissing", True, "listKeys returned no key of the kind being rotated",
              "retried; if it persists, check the account in the portal"),
    ErrorCode("AccountNotReady", True, "the account has no documentEndpoint yet (it is being created)",
              "retried"),
    ErrorCode("VerificationRejected", False,
              "the account's data plane refused the app (for example its firewall); nothing was published",
              "allow the app's outbound addresses on the account, or set VERIFY_NEW_KEY=false"),
    ErrorCode("VerificationTimedOut", True,
              "the new key was still refused after VERIFY_TIMEOUT_SECONDS; nothing was published under "
              "alternate",
              "retried: the next attempt publishes the already regenerated key without regenerating it; raise "
              "VERIFY_TIMEOUT_SECONDS if propagation is slow in the region"),
    ErrorCode("PublishedKeyUnverified", False,
              "under a fixed strategy the new key was published (the old one was already dead) and then did "
              "not verify",
              "check that applications reach the account with the new secret; the next scheduled run rotates "
              "again"),
    ErrorCode("KeyStillInUse", False,
              "the in-use guard (IN_USE_GUARD=enforce) found clients of the key this rotation would regenerate in "
              "the last IN_USE_WINDOW_HOURS; the message names them; nothing was regenerated",
              "move those clients to the published secret (re-read it; never copy the key), then rotate when the "
              "window has passed; or send `force` to rotate anyway"),
    ErrorCode("KeyUsageUnknown", False,
              "the in-use guard found no data-plane request of the account at all in the workspace within the "
              "window: no diagnostic setting (DataPlaneRequests) or no traffic; nothing was regenerated",
              "turn on the account's diagnostic setting (README, \"The in-use guard\"), or send `force`, or set "
              "IN_USE_GUARD=warn"),
    ErrorCode("KeyUsageQueryFailed", True,
              "the in-use guard could not query the Log Analytics workspace (the message says why); nothing "
              "was regenerated",
              "retried; if it persists, check KEY_USAGE_WORKSPACE_ID and the identity's Log Analytics Data Reader "
              "role on the workspace"),
    ErrorCode("LeaseLost", True,
              "the rotation could no longer renew its lease on the account, so it stopped before changing "
              "anything else",
              "retried: the next attempt resumes where this one stopped"),
    ErrorCode("RotationInProgress", True, "another rotation of the same account holds its lease",
              "nothing: the running rotation finishes the work"),
    ErrorCode("RetriesExhausted", False, "every delivery of the request failed without a recorded error",
              "read the function app's logs for the invocation"),
    ErrorCode("BadMessage", False, "a queue message that is not a rotation request",
              "nothing: it is dropped; find who writes to the queue"),
    ErrorCode("ConfigurationError", False, "the app settings are invalid; the message names each one",
              "fix the settings"),
    ErrorCode("UsageError", False, "the command line was used wrongly (`--json` prints it as its one document)",
              "see `python -m cosmos_key_rotation --help`"),
    ErrorCode("UnexpectedError", False, "a product bug: an exception the product did not expect",
              "report it with the function app's logs"),
)

CODES: dict[str, ErrorCode] = {code.name: code for code in _CODES}


def is_transient(name: str) -> bool:
    return CODES[name].transient
