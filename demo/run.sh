#!/usr/bin/env bash
# Walks through the walkthrough's scenarios implemented so far, against the
# running local environment (make up), printing what a user would see.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
source "${OUTRIGGER_STATE:-$REPO/.testenv}/env"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\033[36m$ %s\033[0m\n' "$*"; "$@"; }

step "The cluster: Kubernetes built from source, three m5.large nodes of managed node group ng-1"
run kubectl version 2>/dev/null || true
run kubectl get --raw /readyz; echo
run kubectl get nodes -L node.kubernetes.io/instance-type,topology.kubernetes.io/zone,eks.amazonaws.com/nodegroup
run kubectl describe node "$(kubectl get nodes -o jsonpath='{.items[0].metadata.name}')" | sed -n '/^Capacity:/,/^System Info:/p'

step "The AWS account (moto): subnets and security group found by the walkthrough's discovery tags"
run aws ec2 describe-subnets --filters Name=tag:karpenter.sh/discovery,Values="$CLUSTER_NAME" \
  --query 'Subnets[].[SubnetId,AvailabilityZone,CidrBlock]' --output table
run aws ec2 describe-security-groups --filters Name=tag:karpenter.sh/discovery,Values="$CLUSTER_NAME" \
  --query 'SecurityGroups[].[GroupId,GroupName]' --output table
run aws autoscaling describe-auto-scaling-groups \
  --query 'AutoScalingGroups[].[AutoScalingGroupName,MinSize,DesiredCapacity,MaxSize]' --output table

step "A workload: a Deployment of 3 becomes Ready on the kwok nodes"
kubectl create namespace demo-foundation --dry-run=client -o yaml | kubectl apply -f - >/dev/null
printf '\033[36m$ %s\033[0m\n' "kubectl -n demo-foundation create deployment pause --image=registry.k8s.io/pause:3.10 --replicas=3"
kubectl -n demo-foundation create deployment pause --image=registry.k8s.io/pause:3.10 --replicas=3 \
  --dry-run=client -o yaml | kubectl apply -f -
run kubectl -n demo-foundation rollout status deployment/pause --timeout=60s
run kubectl -n demo-foundation get pods -o wide

step "metrics-server (outrigger metrics-server): the metrics API through the aggregation layer"
run kubectl get apiservice v1beta1.metrics.k8s.io
kubectl -n demo-foundation patch deployment pause --type merge -p \
  '{"spec":{"template":{"metadata":{"annotations":{"kwok.x-k8s.io/usage-cpu":"150m","kwok.x-k8s.io/usage-memory":"48Mi"}}}}}' >/dev/null
kubectl -n demo-foundation rollout status deployment/pause --timeout=60s >/dev/null
printf 'waiting for two scrapes of the new pods (metric resolution 15s)...\n'
for _ in $(seq 1 60); do
  [[ $(kubectl top pod -n demo-foundation --no-headers 2>/dev/null | wc -l) -ge 3 ]] && break
  sleep 1
done
run kubectl top node
run kubectl top pod -A
run kubectl top pod -n demo-foundation --containers
run kubectl get podmetrics -n demo-foundation
echo "--- outrigger metrics-server log (last lines) ---"
tail -n 3 "${OUTRIGGER_STATE:-$REPO/.testenv}/logs/outrigger-metrics-server.log"

step "A new EC2 instance joins the cluster as a Node (the environment's instance joiner)"
subnet=$(aws ec2 describe-subnets --filters Name=tag:karpenter.sh/discovery,Values="$CLUSTER_NAME" \
  Name=availability-zone,Values=ap-southeast-1c --query 'Subnets[0].SubnetId' --output text)
iid=$(aws ec2 run-instances --image-id ami-12c6146b --instance-type m6i.xlarge --subnet-id "$subnet" \
  --tag-specifications "ResourceType=instance,Tags=[{Key=kubernetes.io/cluster/$CLUSTER_NAME,Value=owned}]" \
  --query 'Instances[0].InstanceId' --output text)
echo "launched $iid"
for _ in $(seq 1 50); do
  kubectl get nodes -o jsonpath="{.items[?(@.spec.providerID==\"aws:///ap-southeast-1c/$iid\")].metadata.name}" | grep -q . && break
  sleep 0.2
done
run kubectl get nodes -L node.kubernetes.io/instance-type,topology.kubernetes.io/zone
run aws ec2 terminate-instances --instance-ids "$iid" --query 'TerminatingInstances[].CurrentState.Name' --output text
sleep 2
run kubectl get nodes
kubectl delete namespace demo-foundation --wait=false >/dev/null

cluster_autoscaler_demo() {
step "Cluster Autoscaler (outrigger cluster-autoscaler): ng-1's Auto Scaling group, found by the walkthrough's tags"
run aws autoscaling describe-auto-scaling-groups \
  --filters Name=tag-key,Values=k8s.io/cluster-autoscaler/enabled Name=tag-key,Values=k8s.io/cluster-autoscaler/demo \
  --query 'AutoScalingGroups[].[AutoScalingGroupName,MinSize,MaxSize,DesiredCapacity]' --output table
kubectl create namespace demo-ca --dry-run=client -o yaml | kubectl apply -f - >/dev/null
run kubectl -n demo-ca apply -f "$REPO/deploy/examples/nginx-ca.yaml"
run kubectl -n demo-ca rollout status deployment/nginx-to-scaleout --timeout=90s
run kubectl -n demo-ca scale --replicas=20 deployment/nginx-to-scaleout
printf 'waiting for the group to scale out and all 20 pods to run...\n'
kubectl -n demo-ca rollout status deployment/nginx-to-scaleout --timeout=240s >/dev/null || true
run kubectl -n demo-ca get deployment nginx-to-scaleout
run kubectl get nodes -L node.kubernetes.io/instance-type,eks.amazonaws.com/nodegroup
run kubectl -n demo-ca get events --field-selector reason=TriggeredScaleUp -o custom-columns=OBJECT:.involvedObject.name,MESSAGE:.message --no-headers
run kubectl -n kube-system get configmap cluster-autoscaler-status -o jsonpath='{.data.status}'
echo
step "Delete nginx-ca.yaml: the added nodes are drained and their instances terminated through the group (be patient)"
run kubectl -n demo-ca delete -f "$REPO/deploy/examples/nginx-ca.yaml"
for _ in $(seq 1 180); do
  [[ $(kubectl get nodes -l eks.amazonaws.com/nodegroup=ng-1 --no-headers | wc -l) -le 3 ]] && break
  sleep 1
done
run kubectl get nodes
run kubectl top node
run aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names eks-ng-1-demo \
  --query 'AutoScalingGroups[].[AutoScalingGroupName,DesiredCapacity,length(Instances)]' --output table
kubectl delete namespace demo-ca --wait=false >/dev/null
}

if [[ -e "${OUTRIGGER_STATE:-$REPO/.testenv}/pids/outrigger-cluster-autoscaler.pid" ]]; then
  cluster_autoscaler_demo
else
step "Karpenter (outrigger provisioner): the walkthrough's Provisioner, unchanged, and inflate scaled to 20"
log_from=$(wc -l < "${OUTRIGGER_STATE:-$REPO/.testenv}/logs/outrigger-provisioner.log")
run cat "$REPO/deploy/examples/seed-provisioner.yaml"
run kubectl apply -f "$REPO/deploy/examples/seed-provisioner.yaml"
kubectl create namespace demo-karpenter --dry-run=client -o yaml | kubectl apply -f - >/dev/null
cat <<'EOF_INFLATE' | kubectl -n demo-karpenter apply -f -
apiVersion: apps/v1
kind: Deployment
metadata:
  name: inflate
spec:
  replicas: 0
  selector:
    matchLabels:
      app: inflate
  template:
    metadata:
      labels:
        app: inflate
    spec:
      terminationGracePeriodSeconds: 0
      containers:
        - name: inflate
          image: public.ecr.aws/eks-distro/kubernetes/pause:3.2
          resources:
            requests:
              cpu: 1
EOF_INFLATE
run kubectl -n demo-karpenter scale deployment inflate --replicas 20
run kubectl -n demo-karpenter rollout status deployment/inflate --timeout=90s
run kubectl -n demo-karpenter get pod
run kubectl get node -L node.kubernetes.io/instance-type,karpenter.sh/capacity-type,topology.kubernetes.io/zone
run aws ec2 describe-instances --filters Name=tag:karpenter.sh/nodepool,Values=default Name=instance-state-name,Values=running \
  --query 'Reservations[].Instances[].[InstanceId,InstanceType,Placement.AvailabilityZone,InstanceLifecycle,SubnetId]' --output table
# The controller's log in the walkthrough's form.
seed_log() {
  tail -n +"$((log_from + 1))" "${OUTRIGGER_STATE:-$REPO/.testenv}/logs/outrigger-provisioner.log" | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        d = json.loads(line)
    except ValueError:
        continue
    m = d.get("message", "")
    if not m.startswith(("Created node", "Launched instance", "Waiting for", "Added TTL", "Triggering", "Cordoned", "Deleted node")):
        continue
    extra = {d["kind"]: d["pool"]} if "pool" in d and "kind" in d else {}
    if "node" in d:
        extra["node"] = d["node"]
    print(d["timestamp"], d["level"], "controller", m, json.dumps(extra) if extra else "", sep="\t")
'
}
echo "--- outrigger provisioner log ---"
seed_log | head -n 20

step "Delete inflate: the empty nodes are cordoned and deleted 30 s later, their instances terminated"
run kubectl -n demo-karpenter delete deployment inflate
printf 'waiting for ttlSecondsAfterEmpty (30s)...\n'
for _ in $(seq 1 90); do
  [[ -z $(kubectl get nodes -l karpenter.sh/provisioner-name=default -o name) ]] && break
  sleep 1
done
run kubectl get node
echo "--- outrigger provisioner log ---"
seed_log | tail -n 12
run aws ec2 describe-instances --filters Name=tag:karpenter.sh/nodepool,Values=default \
  --query 'Reservations[].Instances[].[InstanceId,State.Name]' --output table
kubectl delete -f "$REPO/deploy/examples/seed-provisioner.yaml" >/dev/null
kubectl delete namespace demo-karpenter --wait=false >/dev/null

printf '\n(Cluster Autoscaler instead of Karpenter: make down; AUTOSCALER=cluster-autoscaler make demo)\n'
fi

step "AWS Load Balancer Controller (outrigger load-balancer-controller): the walkthrough's nginx.yaml, unchanged"
run kubectl create -f "$REPO/deploy/examples/nginx.yaml"
for _ in $(seq 1 60); do
  [[ -n $(kubectl get svc nginx-nlb -o jsonpath='{.status.loadBalancer.ingress[0].hostname}') ]] && break
  sleep 0.5
done
run kubectl get svc
NLB_DNS=$(kubectl get svc nginx-nlb -o jsonpath='{.status.loadBalancer.ingress[0].hostname}')
run aws elbv2 describe-load-balancers --query "LoadBalancers[?DNSName=='$NLB_DNS'].[LoadBalancerName,Type,Scheme,DNSName]" --output table
NLB_ARN=$(aws elbv2 describe-load-balancers --query "LoadBalancers[?DNSName=='$NLB_DNS'].LoadBalancerArn" --output text)
run aws elbv2 describe-listeners --load-balancer-arn "$NLB_ARN" --query 'Listeners[].[Protocol,Port]' --output table
NLB_TG=$(aws elbv2 describe-target-groups --load-balancer-arn "$NLB_ARN" --query 'TargetGroups[0].TargetGroupArn' --output text)
run aws elbv2 describe-target-groups --load-balancer-arn "$NLB_ARN" --query 'TargetGroups[].[TargetGroupName,TargetType,Protocol,Port]' --output table
sleep 2
run kubectl get pods -l app=nginx -o wide
run aws elbv2 describe-target-health --target-group-arn "$NLB_TG" --query 'TargetHealthDescriptions[].Target.[Id,Port]' --output table
run aws elbv2 describe-load-balancer-attributes --load-balancer-arn "$NLB_ARN" \
  --query "Attributes[?Key=='load_balancing.cross_zone.enabled']" --output table
run kubectl delete -f "$REPO/deploy/examples/nginx.yaml"
run aws elbv2 describe-load-balancers --query "LoadBalancers[?DNSName=='$NLB_DNS'].LoadBalancerName" --output table

step "AWS Load Balancer Controller: the walkthrough's game-2048.yaml, unchanged"
run kubectl create -f "$REPO/deploy/examples/game-2048.yaml"
for _ in $(seq 1 60); do
  [[ -n $(kubectl -n game-2048 get ingress ingress-2048 -o jsonpath='{.status.loadBalancer.ingress[0].hostname}') ]] && break
  sleep 0.5
done
run kubectl get ingress -n game-2048
ALB_DNS=$(kubectl -n game-2048 get ingress ingress-2048 -o jsonpath='{.status.loadBalancer.ingress[0].hostname}')
run aws elbv2 describe-load-balancers --query "LoadBalancers[?DNSName=='$ALB_DNS'].[LoadBalancerName,Type,Scheme,DNSName]" --output table
ALB_ARN=$(aws elbv2 describe-load-balancers --query "LoadBalancers[?DNSName=='$ALB_DNS'].LoadBalancerArn" --output text)
ALB_LISTENER=$(aws elbv2 describe-listeners --load-balancer-arn "$ALB_ARN" --query 'Listeners[0].ListenerArn' --output text)
run aws elbv2 describe-listeners --load-balancer-arn "$ALB_ARN" --query 'Listeners[].[Protocol,Port]' --output table
run aws elbv2 describe-rules --listener-arn "$ALB_LISTENER" \
  --query 'Rules[].[Priority,join(`,`,Conditions[].PathPatternConfig.Values[]),Actions[0].Type]' --output table
run kubectl delete -f "$REPO/deploy/examples/game-2048.yaml"
echo "--- outrigger load-balancer-controller log (last lines) ---"
tail -n 6 "${OUTRIGGER_STATE:-$REPO/.testenv}/logs/outrigger-load-balancer-controller.log"

printf '\nThe environment keeps running: source %s/env to use it; make down stops it.\n' "${OUTRIGGER_STATE:-$REPO/.testenv}"
