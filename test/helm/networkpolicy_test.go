package helm_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestNetworkPolicies: off by default; on, the facade's REST port is open to the given peers (or
// anyone), and metrics (the facade's ops port, the controller's and the workers' metrics ports)
// only to the metrics peers.
func TestNetworkPolicies(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	_, objs := render(t, "qo", "jobs", requiredValues...)
	g.Expect(kinds(objs)).NotTo(HaveKey("NetworkPolicy"), "off by default")

	ns := newNamespace(t, "helm-netpol")
	objs = install(t, "np", ns, append([]string{"--set", "networkPolicy.enabled=true",
		"--set", "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=monitoring",
		"--set", "networkPolicy.apiserverFrom[0].podSelector.matchLabels.app=frontend"}, requiredValues...)...)
	g.Expect(kinds(objs)).To(HaveKeyWithValue("NetworkPolicy", 3))

	get := func(name string) *networkingv1.NetworkPolicy {
		p := &networkingv1.NetworkPolicy{}
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, p)).To(Succeed(), name)
		return p
	}
	port := func(r networkingv1.NetworkPolicyIngressRule) string { return r.Ports[0].Port.String() }
	facade := get("np-queue-operator-apiserver")
	g.Expect(facade.Spec.PodSelector.MatchLabels).To(HaveKeyWithValue("app.kubernetes.io/component", "apiserver"))
	g.Expect(facade.Spec.Ingress).To(HaveLen(2))
	g.Expect(port(facade.Spec.Ingress[0])).To(Equal("http"))
	g.Expect(facade.Spec.Ingress[0].From[0].PodSelector.MatchLabels).To(Equal(map[string]string{"app": "frontend"}))
	g.Expect(port(facade.Spec.Ingress[1])).To(Equal("ops"))
	g.Expect(facade.Spec.Ingress[1].From[0].NamespaceSelector.MatchLabels).To(Equal(map[string]string{"kubernetes.io/metadata.name": "monitoring"}))
	for _, name := range []string{"np-queue-operator-controller", "np-queue-operator-worker"} {
		p := get(name)
		g.Expect(p.Spec.Ingress).To(HaveLen(1), name)
		g.Expect(port(p.Spec.Ingress[0])).To(Equal("metrics"), name)
		g.Expect(p.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels).To(HaveKey("kubernetes.io/metadata.name"), name)
	}
	g.Expect(get("np-queue-operator-worker").Spec.PodSelector.MatchLabels).To(Equal(map[string]string{"app.kubernetes.io/name": "queue-operator-worker"}))

	// Without metrics peers nobody may scrape: the controller's and workers' policies allow nothing.
	_, objs = render(t, "qo", "jobs", append([]string{"--set", "networkPolicy.enabled=true"}, requiredValues...)...)
	p := &networkingv1.NetworkPolicy{}
	g.Expect(fromUnstructured(find(objs, "NetworkPolicy", "qo-queue-operator-controller"), p)).To(Succeed())
	g.Expect(p.Spec.Ingress).To(BeEmpty())
	g.Expect(p.Spec.PolicyTypes).To(Equal([]networkingv1.PolicyType{networkingv1.PolicyTypeIngress}))
	g.Expect(fromUnstructured(find(objs, "NetworkPolicy", "qo-queue-operator-apiserver"), p)).To(Succeed())
	g.Expect(p.Spec.Ingress).To(HaveLen(1))
	g.Expect(p.Spec.Ingress[0].From).To(BeEmpty(), "the REST port is open to anyone without apiserverFrom")
}
