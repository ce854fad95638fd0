"""The self-subject reviews kubectl asks about the caller (``kubectl auth can-i``,
``kubectl auth can-i --list``, ``kubectl auth whoami``). They are never stored: the server
answers each create with the request and its status. The simulator has one credential,
the kubeconfig's token, and it is a cluster administrator (``system:masters``), as the
kubeconfig of an OKE cluster's creator is."""

from __future__ import annotations

import copy
from typing import Any

from .resources import ResourceType

Obj = dict[str, Any]

USERNAME = "nimble-sim"
GROUPS = ["system:masters", "system:authenticated"]
KINDS = ("SelfSubjectAccessReview", "SelfSubjectRulesReview", "SelfSubjectReview")
_ADMIN_REASON = (
    'RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" '
    'to Group "system:masters"'
)


def answer(rt: ResourceType, body: Obj, now: str) -> Obj:
    out = copy.deepcopy(body) if isinstance(body, dict) else {}
    out["apiVersion"], out["kind"] = rt.api_version, rt.kind
    meta = out.setdefault("metadata", {}) or {}
    meta["creationTimestamp"] = now
    out["metadata"] = meta
    if rt.kind == "SelfSubjectAccessReview":
        out["status"] = {"allowed": True, "reason": _ADMIN_REASON}
    elif rt.kind == "SelfSubjectRulesReview":
        out["status"] = {
            "resourceRules": [
                {
                    "verbs": ["create"],
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                },
                {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
            ],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": False,
        }
    else:
        out["status"] = {"userInfo": {"username": USERNAME, "groups": list(GROUPS)}}
    return out
