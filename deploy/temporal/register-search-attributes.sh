#!/bin/sh
# Registers Jobline's custom search attributes (DESIGN.md §7) on a self-hosted Temporal namespace.
# Idempotent: safe to run on every deploy. Runs in temporalio/admin-tools (or any image with the
# `temporal` CLI). Reads the standard CLI variables:
#   TEMPORAL_ADDRESS    host:port of the frontend (e.g. temporal:7233)
#   TEMPORAL_NAMESPACE  namespace the job workflows run in (default: default)
#   CREATE_NAMESPACE    "true" to create the namespace when it is missing (default: true)
#   NAMESPACE_RETENTION retention for a namespace this script creates (default: 30d)
#   WAIT_SECONDS        how long to wait for the server (default: 300)
# The list below must match workflows/search_attributes.py (the dev server gets the same list).
set -eu

: "${TEMPORAL_ADDRESS:?set TEMPORAL_ADDRESS, e.g. temporal:7233}"
: "${TEMPORAL_NAMESPACE:=default}"
: "${CREATE_NAMESPACE:=true}"
: "${NAMESPACE_RETENTION:=30d}"
: "${WAIT_SECONDS:=300}"
export TEMPORAL_ADDRESS TEMPORAL_NAMESPACE

ATTRIBUTES="
JobStage:Keyword
JobMilestone:Keyword
JobNumber:Int
ClientId:Int
JobOwner:Keyword
AssignedTech:Keyword
WaitingOn:Keyword
StageEnteredAt:Datetime
NextReminderAt:Datetime
Stuck:Bool
ContractAmount:Double
"

waited=0
until temporal operator cluster health 2>/dev/null | grep -q SERVING; do
    if [ "$waited" -ge "$WAIT_SECONDS" ]; then
        echo "Temporal at $TEMPORAL_ADDRESS is not serving after ${WAIT_SECONDS}s" >&2
        exit 1
    fi
    echo "waiting for Temporal at $TEMPORAL_ADDRESS ..."
    sleep 2
    waited=$((waited + 2))
done

if ! temporal operator namespace describe --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
    if [ "$CREATE_NAMESPACE" = "true" ]; then
        echo "creating namespace $TEMPORAL_NAMESPACE (retention $NAMESPACE_RETENTION)"
        temporal operator namespace create --namespace "$TEMPORAL_NAMESPACE" \
            --retention "$NAMESPACE_RETENTION" --description "Jobline job workflows"
    fi
fi

# A new namespace takes a moment to reach the frontend's cache.
waited=0
until temporal operator search-attribute list --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; do
    if [ "$waited" -ge "$WAIT_SECONDS" ]; then
        echo "namespace $TEMPORAL_NAMESPACE is not available" >&2
        exit 1
    fi
    echo "waiting for namespace $TEMPORAL_NAMESPACE ..."
    sleep 2
    waited=$((waited + 2))
done

registered() {
    # The CLI prints a table: "  Name   Type". One row per attribute.
    temporal operator search-attribute list --namespace "$TEMPORAL_NAMESPACE" \
        | grep -Eq "^[[:space:]]*$1[[:space:]]+$2[[:space:]]*$"
}

failed=0
for pair in $ATTRIBUTES; do
    name=${pair%%:*}
    type=${pair#*:}
    if registered "$name" "$type"; then
        echo "ok       $name ($type)"
        continue
    fi
    # One attribute per call: works with every CLI version's --name/--type flags.
    if temporal operator search-attribute create --namespace "$TEMPORAL_NAMESPACE" \
        --name "$name" --type "$type" >/dev/null 2>&1 || registered "$name" "$type"; then
        echo "created  $name ($type)"
    else
        echo "FAILED   $name ($type): it may exist with another type, or the visibility store" \
            "has no free $type slot" >&2
        temporal operator search-attribute create --namespace "$TEMPORAL_NAMESPACE" \
            --name "$name" --type "$type" || true
        failed=1
    fi
done

if [ "$failed" -ne 0 ]; then
    exit 1
fi
echo "all Jobline search attributes are registered on namespace $TEMPORAL_NAMESPACE"
