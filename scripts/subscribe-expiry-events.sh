#!/bin/sh
# azd postdeploy hook (azure.yaml): subscribe the function secret_expiry to the vault's Event Grid system
# topic for Key Vault's SecretNearExpiry and SecretExpired events. Run after the code is deployed because
# Event Grid validates an Azure Function destination when the subscription is created, and the function
# exists only then. Endpoint type azurefunction: Event Grid calls the function with its own system key, so
# no key appears here. Idempotent: `create` updates an existing subscription of the same name.
# Without azd, run it after deploying the code with the same variables set (README, "Safety nets").
set -eu
: "${EXPIRY_TOPIC_NAME:?run azd provision first}" "${EXPIRY_TOPIC_RESOURCE_GROUP:?}" \
  "${EXPIRY_TOPIC_SUBSCRIPTION_ID:?}" "${AZURE_FUNCTION_APP_ID:?}"
az eventgrid system-topic event-subscription create \
  --name secret-expiry \
  --subscription "$EXPIRY_TOPIC_SUBSCRIPTION_ID" \
  --resource-group "$EXPIRY_TOPIC_RESOURCE_GROUP" \
  --system-topic-name "$EXPIRY_TOPIC_NAME" \
  --endpoint-type azurefunction \
  --endpoint "$AZURE_FUNCTION_APP_ID/functions/secret_expiry" \
  --included-event-types Microsoft.KeyVault.SecretNearExpiry Microsoft.KeyVault.SecretExpired \
  --max-delivery-attempts 30 --event-ttl 1440 \
  --output none
echo "Event Grid: $EXPIRY_TOPIC_NAME sends SecretNearExpiry and SecretExpired to secret_expiry"
