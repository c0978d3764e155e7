/*
 * Unit tests for api/objects/validate.c and validate_pod.c: each rule once,
 * as a manifest that is decoded, defaulted (as admission does) and then
 * validated, with the exact path and message expected; plus valid
 * variants next to the invalid ones so a rule cannot pass by rejecting
 * everything.
 */
#include "obj_tu.h"

#define POD(spec) "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n" spec
#define C1 "  containers:\n  - name: a\n    image: i\n"
#define DEP(spec)                                                              \
    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n" spec
#define TPL                                                                    \
    "  template:\n    metadata: {labels: {app: a}}\n    spec:\n"               \
    "      containers: [{name: a, image: i}]\n"
#define SEL "  selector: {matchLabels: {app: a}}\n"
#define HPA(spec)                                                              \
    "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"              \
    "metadata: {name: h}\nspec:\n  scaleTargetRef: {kind: Deployment, "        \
    "name: d}\n" spec
#define RBAC "apiVersion: rbac.authorization.k8s.io/v1\n"
#define REF_CR                                                                 \
    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: " \
    "r}\n"

#define LABEL_MSG                                                              \
    "a lowercase RFC 1123 label must consist of lower case alphanumeric "      \
    "characters or '-', and must start and end with an alphanumeric "          \
    "character"
#define SUBDOMAIN_MSG                                                          \
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "  \
    "characters, '-' or '.', and must start and end with an alphanumeric "     \
    "character"

static const struct vcase {
    const char *yaml;
    const char *want; /* NULL: valid */
} cases[] = {
    /* ---- metadata ---- */
    {POD(C1), NULL},
    {"apiVersion: v1\nkind: Pod\nmetadata: {name: My_App}\nspec:\n" C1,
     "metadata.name: Invalid value: \"My_App\": " SUBDOMAIN_MSG},
    {"apiVersion: v1\nkind: Pod\nmetadata: {name: a.b-c}\nspec:\n" C1, NULL},
    {"apiVersion: v1\nkind: Pod\nmetadata: {labels: {a: b}}\nspec:\n" C1,
     "metadata.name: Required value: name or generateName is required"},
    {"apiVersion: v1\nkind: Pod\nmetadata: {generateName: web-}\nspec:\n" C1,
     NULL},
    {"apiVersion: v1\nkind: Namespace\nmetadata: {name: a.b}\n",
     "metadata.name: Invalid value: \"a.b\": " LABEL_MSG},
    {"apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-system}\n", NULL},
    {"apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: Prod}\n"
     "spec:\n" C1,
     "metadata.namespace: Invalid value: \"Prod\": " LABEL_MSG},
    /* Defaulting drops a cluster-scoped object's namespace. */
    {"apiVersion: v1\nkind: Node\nmetadata: {name: n1, namespace: x}\n", NULL},
    {"apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {-bad: x}}\n"
     "spec:\n" C1,
     "metadata.labels: Invalid value: \"-bad\": name part must consist of "
     "alphanumeric characters, '-', '_' or '.', and must start and end with "
     "an alphanumeric character (at most 63), with an optional DNS subdomain "
     "prefix and '/'"},
    {"apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {k: a b}}\n"
     "spec:\n" C1,
     "metadata.labels[k]: Invalid value: \"a b\": a valid label must be an "
     "empty string or consist of alphanumeric characters, '-', '_' or '.', "
     "and must start and end with an alphanumeric character (at most 63)"},
    {"apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: "
     "{example.com/app: A_b.c, e: \"\"}, annotations: {example.com/note: "
     "\"any thing: at all\"}}\nspec:\n" C1,
     NULL},
    {"apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {Bad/x: v}}\n"
     "spec:\n" C1,
     "metadata.labels: Invalid value: \"Bad/x\": name part must consist of "
     "alphanumeric characters, '-', '_' or '.', and must start and end with "
     "an alphanumeric character (at most 63), with an optional DNS subdomain "
     "prefix and '/'"},
    {RBAC "kind: ClusterRole\nmetadata: {name: \"system:scheduler\"}\n", NULL},
    {RBAC "kind: ClusterRole\nmetadata: {name: a/b}\n",
     "metadata.name: Invalid value: \"a/b\": may not be '.' or '..' and may "
     "not contain '/' or '%'"},
    {"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  ownerReferences:\n"
     "  - {apiVersion: apps/v1, kind: ReplicaSet, name: r, uid: u1, "
     "controller: true}\n"
     "  - {apiVersion: apps/v1, kind: ReplicaSet, name: s, uid: u2, "
     "controller: true}\nspec:\n" C1,
     "metadata.ownerReferences[1]: Invalid value: only one reference can have "
     "Controller set to true"},
    {"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  ownerReferences:\n"
     "  - {apiVersion: apps/v1, kind: ReplicaSet, name: r}\nspec:\n" C1,
     "metadata.ownerReferences[0].uid: Required value"},
    {"apiVersion: v1\nkind: Pod\nmetadata: {name: p, finalizers: [\"a b\"]}\n"
     "spec:\n" C1,
     "metadata.finalizers[0]: Invalid value: \"a b\": must be a qualified "
     "name"},

    /* ---- pod: containers ---- */
    {POD("  restartPolicy: Always\n"), "spec.containers: Required value"},
    {POD("  containers:\n  - name: App\n    image: i\n"),
     "spec.containers[0].name: Invalid value: \"App\": " LABEL_MSG},
    {POD(C1 "  - name: a\n    image: j\n"),
     "spec.containers[1].name: Duplicate value: \"a\""},
    {POD(C1 "  initContainers:\n  - name: a\n    image: j\n"),
     "spec.containers[0].name: Duplicate value: \"a\""},
    {POD(C1 "  initContainers:\n  - name: b\n    image: j\n"), NULL},
    {POD("  containers:\n  - name: a\n"),
     "spec.containers[0].image: Required value"},
    {POD(C1 "    imagePullPolicy: Maybe\n"),
     "spec.containers[0].imagePullPolicy: Unsupported value: \"Maybe\": "
     "supported values: \"Always\", \"IfNotPresent\", \"Never\""},
    {POD(C1 "    ports: [{containerPort: 0}]\n"),
     "spec.containers[0].ports[0].containerPort: Invalid value: 0: must be "
     "between 1 and 65535, inclusive"},
    {POD(C1 "    ports: [{containerPort: 70000}]\n"),
     "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must "
     "be between 1 and 65535, inclusive"},
    {POD(C1 "    ports: [{name: web}]\n"),
     "spec.containers[0].ports[0].containerPort: Required value"},
    {POD(C1 "    ports: [{containerPort: 80, protocol: HTTP}]\n"),
     "spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": "
     "supported values: \"TCP\", \"UDP\", \"SCTP\""},
    {POD(C1 "    ports: [{containerPort: 80, name: web}, {containerPort: 81, "
            "name: web}]\n"),
     "spec.containers[0].ports[1].name: Duplicate value: \"web\""},
    {POD(C1 "    env: [{value: x}]\n"),
     "spec.containers[0].env[0].name: Required value"},

    /* ---- pod: resources ---- */
    {POD(C1 "    resources:\n      requests: {cpu: 600m}\n"
            "      limits: {cpu: 500m}\n"),
     "spec.containers[0].resources.requests[cpu]: Invalid value: \"600m\": "
     "must be less than or equal to cpu limit of 500m"},
    {POD(C1 "    resources:\n      requests: {memory: 2Gi}\n"
            "      limits: {memory: 1Gi}\n"),
     "spec.containers[0].resources.requests[memory]: Invalid value: \"2Gi\": "
     "must be less than or equal to memory limit of 1Gi"},
    {POD(C1 "    resources:\n      requests: {cpu: 500m, memory: 1Gi}\n"
            "      limits: {cpu: 0.5, memory: 1024Mi}\n"),
     NULL},
    {POD(C1 "    resources:\n      limits: {cpu: \"-1\"}\n"),
     "spec.containers[0].resources.limits[cpu]: Invalid value: \"-1\": must "
     "be greater than or equal to 0"},
    {POD(C1 "    resources:\n      limits: {\"bad key\": 1}\n"),
     "spec.containers[0].resources.limits[bad key]: Invalid value: \"bad "
     "key\": must be a standard resource name or a qualified name"},

    /* ---- pod: probes ---- */
    {POD(C1 "    livenessProbe:\n      exec: {command: [x]}\n"
            "      tcpSocket: {port: 80}\n"),
     "spec.containers[0].livenessProbe: Forbidden: may not specify more than "
     "1 handler type"},
    {POD(C1 "    livenessProbe: {periodSeconds: 5}\n"),
     "spec.containers[0].livenessProbe: Required value: must specify a "
     "handler type"},
    {POD(C1 "    livenessProbe:\n      exec: {command: [x]}\n"
            "      successThreshold: 2\n"),
     "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: "
     "must be 1"},
    {POD(C1 "    startupProbe:\n      exec: {command: [x]}\n"
            "      successThreshold: 3\n"),
     "spec.containers[0].startupProbe.successThreshold: Invalid value: 3: "
     "must be 1"},
    {POD(C1 "    readinessProbe:\n      exec: {command: [x]}\n"
            "      successThreshold: 2\n"),
     NULL},
    {POD(C1 "    livenessProbe:\n      exec: {command: [x]}\n"
            "      initialDelaySeconds: -1\n"),
     "spec.containers[0].livenessProbe.initialDelaySeconds: Invalid value: "
     "-1: must be greater than or equal to 0"},
    {POD(C1 "    readinessProbe:\n      exec: {command: [x]}\n"
            "      periodSeconds: -5\n"),
     "spec.containers[0].readinessProbe.periodSeconds: Invalid value: -5: "
     "must be greater than or equal to 1"},
    {POD(C1 "    readinessProbe:\n      exec: {command: [x]}\n"
            "      timeoutSeconds: -1\n"),
     "spec.containers[0].readinessProbe.timeoutSeconds: Invalid value: -1: "
     "must be greater than or equal to 1"},
    {POD(C1 "    readinessProbe:\n      exec: {command: [x]}\n"
            "      failureThreshold: -3\n"),
     "spec.containers[0].readinessProbe.failureThreshold: Invalid value: -3: "
     "must be greater than or equal to 1"},
    {POD(C1 "    livenessProbe:\n      exec: {command: [x]}\n"
            "      terminationGracePeriodSeconds: 0\n"),
     "spec.containers[0].livenessProbe.terminationGracePeriodSeconds: Invalid "
     "value: 0: must be greater than or equal to 1"},
    {POD(C1 "    livenessProbe:\n      httpGet: {port: 0}\n"),
     "spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0: must "
     "be between 1 and 65535, inclusive"},
    {POD(C1 "    livenessProbe:\n      httpGet: {port: my_port}\n"),
     "spec.containers[0].livenessProbe.httpGet.port: Invalid value: "
     "\"my_port\": must contain only alpha-numeric characters (a-z, 0-9), and "
     "hyphens (-), at least one letter, at most 15 characters"},
    {POD(C1 "    livenessProbe:\n      httpGet: {port: http, scheme: FTP}\n"),
     "spec.containers[0].livenessProbe.httpGet.scheme: Unsupported value: "
     "\"FTP\": supported values: \"HTTP\", \"HTTPS\""},
    {POD(C1 "    livenessProbe:\n      httpGet: {port: http, scheme: HTTPS}\n"),
     NULL},
    {POD(C1 "    readinessProbe:\n      tcpSocket: {port: 70000}\n"),
     "spec.containers[0].readinessProbe.tcpSocket.port: Invalid value: 70000: "
     "must be between 1 and 65535, inclusive"},
    {POD(C1 "    livenessProbe:\n      exec: {}\n"),
     "spec.containers[0].livenessProbe.exec.command: Required value"},
    {POD("  initContainers:\n  - name: i\n    image: i\n"
         "    readinessProbe: {exec: {command: [x]}}\n" C1),
     "spec.initContainers[0].readinessProbe: Forbidden: may not be set for "
     "init containers without restartPolicy=Always"},

    /* ---- pod: spec fields ---- */
    {POD(C1 "  restartPolicy: Sometimes\n"),
     "spec.restartPolicy: Unsupported value: \"Sometimes\": supported "
     "values: \"Always\", \"OnFailure\", \"Never\""},
    {POD(C1 "  terminationGracePeriodSeconds: -1\n"),
     "spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater "
     "than or equal to 0"},
    {POD(C1 "  activeDeadlineSeconds: 0\n"),
     "spec.activeDeadlineSeconds: Invalid value: 0: must be greater than or "
     "equal to 1"},
    {POD(C1 "  nodeSelector: {disktype: a b}\n"),
     "spec.nodeSelector[disktype]: Invalid value: \"a b\": a valid label must "
     "be an empty string or consist of alphanumeric characters, '-', '_' or "
     "'.', and must start and end with an alphanumeric character (at most "
     "63)"},
    {POD(C1 "  nodeName: Node_1\n"),
     "spec.nodeName: Invalid value: \"Node_1\": must be a DNS subdomain"},

/* ---- pod: affinity ---- */
#define NA_REQ                                                                 \
    "  affinity:\n    nodeAffinity:\n"                                         \
    "      requiredDuringSchedulingIgnoredDuringExecution:\n"                  \
    "        nodeSelectorTerms:\n"
#define NA_PATH                                                                \
    "spec.affinity.nodeAffinity."                                              \
    "requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
    {POD(C1 NA_REQ "        - matchExpressions: [{key: zone, operator: Like, "
                   "values: [a]}]\n"),
     NA_PATH "[0].matchExpressions[0].operator: Unsupported value: \"Like\": "
             "supported values: \"In\", \"NotIn\", \"Exists\", "
             "\"DoesNotExist\", \"Gt\", \"Lt\""},
    {POD(C1 NA_REQ "        - matchExpressions: [{key: zone, operator: "
                   "NotIn}]\n"),
     NA_PATH "[0].matchExpressions[0].values: Required value: must be "
             "specified when `operator` is 'In' or 'NotIn'"},
    {POD(C1 NA_REQ "        - matchExpressions: [{key: zone, operator: "
                   "Exists, values: [a]}]\n"),
     NA_PATH "[0].matchExpressions[0].values: Forbidden: may not be "
             "specified when `operator` is 'Exists' or 'DoesNotExist'"},
    {POD(C1 NA_REQ "        - matchExpressions: [{key: cores, operator: Gt, "
                   "values: [abc]}]\n"),
     NA_PATH "[0].matchExpressions[0].values: Required value: must be "
             "specified single value when `operator` is 'Lt' or 'Gt' (an "
             "integer)"},
    {POD(C1 NA_REQ "        - matchExpressions: [{key: cores, operator: Lt, "
                   "values: [\"1\", \"2\"]}]\n"),
     NA_PATH "[0].matchExpressions[0].values: Required value: must be "
             "specified single value when `operator` is 'Lt' or 'Gt' (an "
             "integer)"},
    {POD(C1 NA_REQ "        - matchExpressions: [{key: cores, operator: Gt, "
                   "values: [\"4\"]}, {key: gpu, operator: DoesNotExist}]\n"),
     NULL},
    {POD(C1 NA_REQ "          []\n"),
     NA_PATH ": Required value: must have at least one node selector term"},
    {POD(C1 "  affinity:\n    nodeAffinity:\n"
            "      preferredDuringSchedulingIgnoredDuringExecution:\n"
            "      - {weight: 0, preference: {matchExpressions: [{key: a, "
            "operator: Exists}]}}\n"),
     "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuring"
     "Execution[0].weight: Invalid value: 0: must be between 1 and 100, "
     "inclusive"},
    {POD(C1 "  affinity:\n    podAntiAffinity:\n"
            "      requiredDuringSchedulingIgnoredDuringExecution:\n"
            "      - labelSelector: {matchLabels: {app: web}}\n"),
     "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuring"
     "Execution[0].topologyKey: Required value: can not be empty"},
    {POD(C1 "  affinity:\n    podAntiAffinity:\n"
            "      requiredDuringSchedulingIgnoredDuringExecution:\n"
            "      - labelSelector: {matchLabels: {app: web}}\n"
            "        topologyKey: kubernetes.io/hostname\n"),
     NULL},
    {POD(C1 "  affinity:\n    podAffinity:\n"
            "      preferredDuringSchedulingIgnoredDuringExecution:\n"
            "      - weight: 101\n        podAffinityTerm: {topologyKey: "
            "zone}\n"),
     "spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuring"
     "Execution[0].weight: Invalid value: 101: must be between 1 and 100, "
     "inclusive"},
    {POD(C1 "  affinity:\n    podAffinity:\n"
            "      requiredDuringSchedulingIgnoredDuringExecution:\n"
            "      - labelSelector: {matchExpressions: [{key: app, operator: "
            "In}]}\n        topologyKey: zone\n"),
     "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuring"
     "Execution[0].labelSelector.matchExpressions[0].values: Required value: "
     "must be specified when `operator` is 'In' or 'NotIn'"},

    /* ---- pod: tolerations ---- */
    {POD(C1 "  tolerations: [{key: gpu, operator: Exists, value: "
            "\"true\"}]\n"),
     "spec.tolerations[0].operator: Invalid value: \"true\": value must be "
     "empty when `operator` is 'Exists'"},
    {POD(C1 "  tolerations: [{operator: Equal, value: x}]\n"),
     "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must "
     "be Exists when `key` is empty, which means \"match all values and all "
     "keys\""},
    {POD(C1 "  tolerations: [{key: gpu, operator: Maybe}]\n"),
     "spec.tolerations[0].operator: Unsupported value: \"Maybe\": supported "
     "values: \"Exists\", \"Equal\""},
    {POD(C1 "  tolerations: [{key: gpu, effect: NoRun}]\n"),
     "spec.tolerations[0].effect: Unsupported value: \"NoRun\": supported "
     "values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""},
    {POD(C1 "  tolerations: [{key: gpu, effect: NoSchedule, "
            "tolerationSeconds: 10}]\n"),
     "spec.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must "
     "be 'NoExecute' when `tolerationSeconds` is set"},

    /* ---- pod: volumes ---- */
    {POD(C1 "    volumeMounts: [{name: data, mountPath: /data}]\n"
            "  volumes:\n  - name: data\n    persistentVolumeClaim: "
            "{claimName: c}\n  - name: tmp\n    emptyDir: {sizeLimit: 1Gi}\n"),
     NULL},
    {POD(C1 "  volumes:\n  - name: data\n    emptyDir: {}\n"
            "    hostPath: {path: /x}\n"),
     "spec.volumes[0]: Forbidden: may not specify more than 1 volume type"},
    {POD(C1 "  volumes:\n  - name: data\n"),
     "spec.volumes[0]: Required value: must specify a volume type"},
    {POD(C1 "  volumes:\n  - {name: d, emptyDir: {}}\n"
            "  - {name: d, emptyDir: {}}\n"),
     "spec.volumes[1].name: Duplicate value: \"d\""},
    {POD(C1 "  volumes:\n  - {name: d, persistentVolumeClaim: {}}\n"),
     "spec.volumes[0].persistentVolumeClaim.claimName: Required value"},
    {POD(C1 "    volumeMounts: [{name: data, mountPath: /data}]\n"),
     "spec.containers[0].volumeMounts[0].name: Not found: \"data\""},
    {POD(C1 "    volumeMounts: [{name: d}]\n  volumes: [{name: d, emptyDir: "
            "{}}]\n"),
     "spec.containers[0].volumeMounts[0].mountPath: Required value"},

    /* ---- workloads ---- */
    {DEP(SEL TPL), NULL},
    {DEP(TPL), "spec.selector: Required value"},
    {DEP("  selector: {matchLabels: {app: other}}\n" TPL),
     "spec.template.metadata.labels: Invalid value: \"app=a\": `selector` "
     "does not match template `labels`"},
    {DEP("  selector: {}\n" TPL),
     "spec.selector: Invalid value: {}: empty selector is invalid for this "
     "workload"},
    {DEP("  selector: {matchExpressions: [{key: app, operator: In, values: "
         "[a, b]}]}\n" TPL),
     NULL},
    {DEP("  selector: {matchExpressions: [{key: app, operator: NotIn, "
         "values: [a]}]}\n" TPL),
     "spec.template.metadata.labels: Invalid value: \"app=a\": `selector` "
     "does not match template `labels`"},
    {DEP("  selector: {matchExpressions: [{key: app, operator: Near}]}\n" TPL),
     "spec.selector.matchExpressions[0].operator: Unsupported value: "
     "\"Near\": supported values: \"In\", \"NotIn\", \"Exists\", "
     "\"DoesNotExist\""},
    {DEP(SEL TPL "      restartPolicy: Never\n"),
     "spec.template.spec.restartPolicy: Unsupported value: \"Never\": "
     "supported values: \"Always\""},
    {DEP(SEL "  template:\n    metadata: {labels: {app: a}}\n    spec:\n"
             "      containers: [{name: a}]\n"),
     "spec.template.spec.containers[0].image: Required value"},
    {DEP(SEL TPL "  replicas: -1\n"),
     "spec.replicas: Invalid value: -1: must be greater than or equal to 0"},
    {DEP(SEL TPL "  strategy:\n    type: Recreate\n"
                 "    rollingUpdate: {maxSurge: 1}\n"),
     "spec.strategy.rollingUpdate: Forbidden: may not be specified when "
     "strategy `type` is 'Recreate'"},
    {DEP(SEL TPL "  strategy: {type: BlueGreen}\n"),
     "spec.strategy.type: Unsupported value: \"BlueGreen\": supported "
     "values: \"RollingUpdate\", \"Recreate\""},
    {DEP(SEL TPL "  strategy: {rollingUpdate: {maxUnavailable: 150%}}\n"),
     "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"150%\": "
     "must not be greater than 100%"},
    {DEP(SEL TPL "  strategy: {rollingUpdate: {maxSurge: abc}}\n"),
     "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"abc\": a valid "
     "percent string must be a numeric string followed by an ending '%'"},
    {DEP(SEL TPL "  strategy: {rollingUpdate: {maxSurge: -1}}\n"),
     "spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be "
     "greater than or equal to 0"},
    {DEP(SEL TPL "  strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: "
                 "0%}}\n"),
     "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not "
     "be 0 when `maxSurge` is 0"},
    {DEP(SEL TPL "  strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: "
                 "1}}\n"),
     NULL},
    {DEP(SEL TPL "  minReadySeconds: 10\n  progressDeadlineSeconds: 5\n"),
     "spec.progressDeadlineSeconds: Invalid value: 5: must be greater than "
     "minReadySeconds"},
    {DEP(SEL TPL "  revisionHistoryLimit: -1\n"),
     "spec.revisionHistoryLimit: Invalid value: -1: must be greater than or "
     "equal to 0"},
    {"apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: r}\nspec:\n" SEL
         TPL "  replicas: -2\n",
     "spec.replicas: Invalid value: -2: must be greater than or equal to 0"},
    {"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: ds}\nspec:\n" SEL
         TPL "  updateStrategy: {type: OnDelete, rollingUpdate: "
     "{maxUnavailable: 1}}\n",
     "spec.updateStrategy.rollingUpdate: Forbidden: may not be specified when "
     "strategy `type` is 'OnDelete'"},
    {"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: ds}\nspec:\n" SEL
         TPL "  updateStrategy: {rollingUpdate: {maxUnavailable: 10%}}\n",
     NULL},
#define STS                                                                    \
    "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec:\n"
    {STS SEL TPL "  podManagementPolicy: Random\n",
     "spec.podManagementPolicy: Unsupported value: \"Random\": supported "
     "values: \"OrderedReady\", \"Parallel\""},
    {STS SEL TPL "  volumeClaimTemplates:\n  - metadata: {name: data}\n"
                 "    spec: {resources: {requests: {storage: 1Gi}}}\n",
     "spec.volumeClaimTemplates[0].spec.accessModes: Required value: at "
     "least 1 access mode is required"},
    {STS SEL TPL "  volumeClaimTemplates:\n  - metadata: {name: data}\n"
                 "    spec: {accessModes: [ReadWriteOnce]}\n",
     "spec.volumeClaimTemplates[0].spec.resources.requests[storage]: "
     "Required value"},
    {STS SEL "  template:\n    metadata: {labels: {app: a}}\n    spec:\n"
             "      containers: [{name: a, image: i, volumeMounts: [{name: "
             "data, mountPath: /d}]}]\n"
             "  volumeClaimTemplates:\n  - metadata: {name: data}\n"
             "    spec: {accessModes: [ReadWriteOnce], resources: "
             "{requests: {storage: 1Gi}}}\n",
     NULL},
    {STS SEL TPL "  updateStrategy: {rollingUpdate: {partition: -1}}\n",
     "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be "
     "greater than or equal to 0"},

/* ---- PersistentVolumeClaim ---- */
#define PVC "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\n"
    {PVC "spec: {accessModes: [ReadWriteOnce], resources: {requests: "
         "{storage: 1Gi}}, storageClassName: fast}\n",
     NULL},
    {PVC "spec: {accessModes: [ReadWriteSometimes], resources: {requests: "
         "{storage: 1Gi}}}\n",
     "spec.accessModes[0]: Unsupported value: \"ReadWriteSometimes\": "
     "supported values: \"ReadWriteOnce\", \"ReadOnlyMany\", "
     "\"ReadWriteMany\", \"ReadWriteOncePod\""},
    {PVC "spec: {accessModes: [ReadWriteOnce], resources: {requests: "
         "{storage: 0}}}\n",
     "spec.resources.requests[storage]: Invalid value: \"0\": must be "
     "greater than zero"},
    {PVC "spec: {accessModes: [ReadWriteOnce], volumeMode: Raw, resources: "
         "{requests: {storage: 1}}}\n",
     "spec.volumeMode: Unsupported value: \"Raw\": supported values: "
     "\"Filesystem\", \"Block\""},

    /* ---- HPA ---- */
    {HPA("  minReplicas: 0\n  maxReplicas: 3\n"),
     "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"},
    {HPA("  minReplicas: 2\n  maxReplicas: 1\n"),
     "spec.maxReplicas: Invalid value: 1: must be greater than or equal to "
     "`minReplicas`"},
    {HPA("  minReplicas: 2\n"),
     "spec.maxReplicas: Invalid value: 0: must be greater than or equal to 1"},
    {"apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"
     "metadata: {name: h}\nspec:\n  scaleTargetRef: {kind: Deployment}\n"
     "  maxReplicas: 3\n",
     "spec.scaleTargetRef.name: Required value"},
    {HPA("  maxReplicas: 3\n  metrics: [{type: Pods}]\n"),
     "spec.metrics[0].type: Unsupported value: \"Pods\": supported values: "
     "\"Resource\""},
    {HPA("  maxReplicas: 3\n  metrics: [{type: Resource}]\n"),
     "spec.metrics[0].resource: Required value: must populate information "
     "for the given metric source"},
    {HPA("  maxReplicas: 3\n  metrics: [{type: Resource, resource: {name: "
         "gpu, target: {type: Utilization, averageUtilization: 50}}}]\n"),
     "spec.metrics[0].resource.name: Unsupported value: \"gpu\": supported "
     "values: \"cpu\", \"memory\""},
    {HPA("  maxReplicas: 3\n  metrics: [{type: Resource, resource: {name: "
         "cpu, target: {type: Utilization}}}]\n"),
     "spec.metrics[0].resource.target.averageUtilization: Required value: "
     "must set either a target raw value or a target utilization"},
    {HPA("  maxReplicas: 3\n  metrics: [{type: Resource, resource: {name: "
         "cpu, target: {type: Utilization, averageUtilization: 0}}}]\n"),
     "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: "
     "must be greater than or equal to 1"},
    {HPA("  maxReplicas: 3\n  metrics: [{type: Resource, resource: {name: "
         "memory, target: {type: AverageValue, averageValue: 0}}}]\n"),
     "spec.metrics[0].resource.target.averageValue: Invalid value: \"0\": "
     "must be positive"},
    {HPA("  maxReplicas: 3\n  metrics: [{type: Resource, resource: {name: "
         "memory, target: {type: AverageValue, averageValue: 500Mi}}}]\n"),
     NULL},
    {HPA("  maxReplicas: 3\n  behavior:\n    scaleUp:\n      policies: "
         "[{type: Pods, value: 4, periodSeconds: 0}]\n"),
     "spec.behavior.scaleUp.policies[0].periodSeconds: Invalid value: 0: "
     "must be between 1 and 1800, inclusive"},
    {HPA("  maxReplicas: 3\n  behavior:\n    scaleDown: "
         "{stabilizationWindowSeconds: 4000}\n"),
     "spec.behavior.scaleDown.stabilizationWindowSeconds: Invalid value: "
     "4000: must be between 0 and 3600, inclusive"},
    {HPA("  maxReplicas: 3\n  behavior:\n    scaleDown: {selectPolicy: "
         "Avg}\n"),
     "spec.behavior.scaleDown.selectPolicy: Unsupported value: \"Avg\": "
     "supported values: \"Max\", \"Min\", \"Disabled\""},

    /* ---- Node, Lease, Event ---- */
    {"apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec:\n  taints: "
     "[{key: gpu, value: \"true\", effect: NoSchedule}, {key: gpu, effect: "
     "NoExecute}]\n",
     NULL},
    {"apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec:\n  taints: "
     "[{key: gpu, effect: Never}]\n",
     "spec.taints[0].effect: Unsupported value: \"Never\": supported values: "
     "\"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""},
    {"apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec:\n  taints: "
     "[{key: gpu}]\n",
     "spec.taints[0].effect: Required value"},
    {"apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec:\n  taints: "
     "[{key: a, effect: NoSchedule}, {key: a, value: b, effect: "
     "NoSchedule}]\n",
     "spec.taints[1]: Duplicate value: \"a:NoSchedule\": taints must be "
     "unique by key and effect pair"},
    {"apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: l}\n"
     "spec: {leaseDurationSeconds: 0}\n",
     "spec.leaseDurationSeconds: Invalid value: 0: must be greater than or "
     "equal to 1"},
    {"apiVersion: v1\nkind: Event\nmetadata: {name: e}\nreason: X\n",
     "involvedObject: Required value"},
    {"apiVersion: v1\nkind: Event\nmetadata: {name: e}\ninvolvedObject: "
     "{kind: Pod, name: p}\ncount: -1\n",
     "count: Invalid value: -1: must be greater than or equal to 0"},

    /* ---- RBAC ---- */
    {RBAC "kind: Role\nmetadata: {name: r}\nrules:\n- apiGroups: [\"\"]\n"
          "  resources: [pods, pods/status]\n  verbs: [get, list, watch]\n",
     NULL},
    {RBAC "kind: Role\nmetadata: {name: r}\nrules:\n- apiGroups: [\"\"]\n"
          "  resources: [pods]\n",
     "rules[0].verbs: Required value: verbs must contain at least one value"},
    {RBAC "kind: Role\nmetadata: {name: r}\nrules:\n- verbs: [get]\n"
          "  resources: [pods]\n",
     "rules[0].apiGroups: Required value: resource rules must supply at "
     "least one api group"},
    {RBAC "kind: Role\nmetadata: {name: r}\nrules:\n- verbs: [get]\n"
          "  nonResourceURLs: [/healthz]\n",
     "rules[0].nonResourceURLs: Invalid value: namespaced rules cannot apply "
     "to non-resource URLs"},
    {RBAC "kind: ClusterRole\nmetadata: {name: r}\nrules:\n- verbs: [get]\n"
          "  nonResourceURLs: [/healthz]\n",
     NULL},
    {RBAC "kind: RoleBinding\nmetadata: {name: b}\nsubjects:\n"
          "- {kind: User, name: alice}\n- {kind: ServiceAccount, name: sa}\n"
          "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: "
          "r}\n",
     NULL},
    {RBAC "kind: RoleBinding\nmetadata: {name: b}\nsubjects:\n"
          "- {kind: Robot, name: r2}\n" REF_CR,
     "subjects[0].kind: Unsupported value: \"Robot\": supported values: "
     "\"User\", \"Group\", \"ServiceAccount\""},
    {RBAC "kind: RoleBinding\nmetadata: {name: b}\nsubjects:\n"
          "- {kind: User}\n" REF_CR,
     "subjects[0].name: Required value"},
    {RBAC "kind: ClusterRoleBinding\nmetadata: {name: b}\nsubjects:\n"
          "- {kind: User, name: u}\nroleRef: {apiGroup: "
          "rbac.authorization.k8s.io, kind: Role, name: r}\n",
     "roleRef.kind: Unsupported value: \"Role\": supported values: "
     "\"ClusterRole\""},
    {RBAC "kind: ClusterRoleBinding\nmetadata: {name: b}\nsubjects:\n"
          "- {kind: ServiceAccount, name: sa}\n" REF_CR,
     "subjects[0].namespace: Required value"},
    {RBAC "kind: ClusterRoleBinding\nmetadata: {name: b}\nsubjects:\n"
          "- {kind: Group, name: g}\nroleRef: {kind: ClusterRole, name: r}\n",
     "roleRef.apiGroup: Required value"},
    {RBAC "kind: RoleBinding\nmetadata: {name: b}\n",
     "roleRef: Required value"},
};

static void test_rules(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cm_arena a = {0};
        obj_object *o = otu_one(&a, cases[i].yaml);
        assert_int_equal(obj_defaults(o, &otu_env, &a), 0);
        obj_error err;
        char msg[600];
        int rc = obj_validate(o, &err);
        const char *got =
            rc ? obj_error_format(&err, NULL, msg, sizeof msg) : NULL;
        if (!cases[i].want && rc)
            fail_msg("case %zu: want valid, got: %s\n%s", i, got,
                     cases[i].yaml);
        if (cases[i].want && !rc)
            fail_msg("case %zu: want: %s\ngot valid:\n%s", i, cases[i].want,
                     cases[i].yaml);
        if (cases[i].want) {
            assert_int_equal(rc, OBJ_EINVALID);
            assert_int_equal(err.line, 0);
            if (strcmp(got, cases[i].want))
                fail_msg("case %zu:\n got: %s\nwant: %s", i, got,
                         cases[i].want);
        }
        cm_arena_free(&a);
    }
}

/* Validation expects defaulted objects: fields the defaults fill in are
 * required, as after Kubernetes' defaulting. */
static void test_needs_defaults(void **state)
{
    (void)state;
    cm_arena a = {0};
    obj_object *o = otu_one(&a, POD(C1));
    obj_error err;
    assert_int_equal(obj_validate(o, &err), OBJ_EINVALID);
    assert_string_equal(err.path, "metadata.namespace");
    assert_string_equal(err.msg, "Required value");
    assert_int_equal(obj_defaults(o, NULL, &a), 0);
    assert_int_equal(obj_validate(o, &err), 0);
    /* Without defaulting, a cluster-scoped namespace is refused. */
    o = otu_one(&a, "apiVersion: v1\nkind: Node\nmetadata: {name: n1, "
                    "namespace: x}\n");
    assert_int_equal(obj_validate(o, &err), OBJ_EINVALID);
    assert_string_equal(err.path, "metadata.namespace");
    assert_string_equal(err.msg, "Forbidden: not allowed on this type");
    obj_object empty = SKIFFPB__V1__OBJECT__INIT;
    assert_int_equal(obj_validate(&empty, &err), OBJ_EINVALID);
    assert_string_equal(err.path, "kind");
    cm_arena_free(&a);
}

/* A long name is cut at 63 (labels) and 253 (subdomains). */
static void test_name_lengths(void **state)
{
    (void)state;
    char y[1024], name[300];
    cm_arena a = {0};
    obj_error err;
    for (int len = 252; len <= 254; len++) {
        memset(name, 'a', (size_t)len);
        name[len] = '\0';
        snprintf(y, sizeof y,
                 "apiVersion: v1\nkind: Pod\nmetadata: {name: "
                 "%s}\nspec:\n" C1,
                 name);
        obj_object *o = otu_one(&a, y);
        assert_int_equal(obj_defaults(o, NULL, &a), 0);
        assert_int_equal(obj_validate(o, &err), len <= 253 ? 0 : OBJ_EINVALID);
    }
    for (int len = 63; len <= 64; len++) {
        memset(name, 'a', (size_t)len);
        name[len] = '\0';
        snprintf(y, sizeof y,
                 "apiVersion: v1\nkind: Namespace\nmetadata: "
                 "{name: %s}\n",
                 name);
        obj_object *o = otu_one(&a, y);
        assert_int_equal(obj_defaults(o, NULL, &a), 0);
        assert_int_equal(obj_validate(o, &err), len <= 63 ? 0 : OBJ_EINVALID);
        /* Label values have the same limit. */
        snprintf(y, sizeof y,
                 "apiVersion: v1\nkind: Namespace\nmetadata: "
                 "{name: ns, labels: {k: %s}}\n",
                 name);
        o = otu_one(&a, y);
        assert_int_equal(obj_defaults(o, NULL, &a), 0);
        assert_int_equal(obj_validate(o, &err), len <= 63 ? 0 : OBJ_EINVALID);
    }
    cm_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rules, otu_setup, otu_teardown),
        cmocka_unit_test_setup_teardown(test_needs_defaults, otu_setup,
                                        otu_teardown),
        cmocka_unit_test_setup_teardown(test_name_lengths, otu_setup,
                                        otu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
