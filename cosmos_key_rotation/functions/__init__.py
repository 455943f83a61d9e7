"""The function app's triggers: each module translates between the Functions host and the product."""
