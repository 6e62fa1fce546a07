// A workflow's canvas, read-only: nodes where the canvas places them, edges between their ports, composite
// nodes' inner blocks in a frame beside them. Generic over node types: an unknown type gets the default icon.
import { memo, useMemo } from "react";
import {
  Background, Controls, type Edge, Handle, type Node, type NodeProps, Position, ReactFlow,
} from "@xyflow/react";
import type { CanvasEdge, CanvasNode, CanvasPayload } from "../api";
import { nodeKind, portLabel } from "../nodeTypes";
import { Json } from "./Json";

const NODE_WIDTH = 230;
const PAD = 32;
const IN = "in";
const OUT = "out";

interface BlockData extends Record<string, unknown> {
  node: CanvasNode;
  status?: string;
  selected: boolean;
  targets: string[];
}
interface FrameData extends Record<string, unknown> { title: string }

function nodeHeight(node: CanvasNode): number {
  return 64 + Math.max(0, node.ports.length - 1) * 22;
}

const Block = memo(function Block({ data }: NodeProps<Node<BlockData>>) {
  const { node, status, targets } = data;
  const kind = nodeKind(node.type);
  const Icon = kind.icon;
  const ports = node.ports.length ? node.ports : [OUT];
  return (
    <div className={`block${status ? ` status-${status}` : ""}${node.known ? "" : " unknown"}`}
      style={{ width: NODE_WIDTH, minHeight: nodeHeight(node) }} data-node-id={node.id} data-status={status}>
      {[IN, ...targets].map((id, index) => (
        <Handle key={id} id={id} type="target" position={Position.Left} isConnectable={false}
          style={{ top: 24 + index * 16 }} />
      ))}
      <div className="block-head">
        <Icon size={16} aria-hidden />
        <span className="block-title">{node.title || node.id}</span>
      </div>
      <div className="block-type">{kind.label}{node.known ? "" : " · not supported"}{status ? ` · ${status}` : ""}</div>
      {ports.map((port, index) => (
        <div key={port} className="port" style={{ top: 22 + index * 22 }}>
          {port !== OUT && <span>{portLabel(node.type, port, node.data)}</span>}
          <Handle id={port} type="source" position={Position.Right} isConnectable={false} />
        </div>
      ))}
    </div>
  );
});

function Frame({ data }: NodeProps<Node<FrameData>>) {
  return <div className="frame"><span>{data.title}</span></div>;
}

const NODE_TYPES = { block: Block, frame: Frame };

function layout(canvas: CanvasPayload, statuses: Record<string, string>, selected: string | null,
): { nodes: Node[]; edges: Edge[] } {
  const targets = new Map<string, string[]>();
  for (const edge of canvas.edges) {
    if (edge.target_port) targets.set(edge.target, [...new Set([...(targets.get(edge.target) ?? []), edge.target_port])]);
  }
  const byId = new Map(canvas.nodes.map((node) => [node.id, node]));
  const nodes: Node[] = [];
  const block = (node: CanvasNode, position: { x: number; y: number }, parentId?: string): Node<BlockData> => ({
    id: node.id,
    type: "block",
    position,
    parentId,
    data: { node, status: statuses[node.id], selected: node.id === selected, targets: targets.get(node.id) ?? [] },
    selected: node.id === selected,
    ariaLabel: `${node.title || node.id}, ${nodeKind(node.type).label}${statuses[node.id] ? `, ${statuses[node.id]}` : ""}`,
    draggable: false,
    connectable: false,
  });
  for (const node of canvas.nodes.filter((n) => n.parent === null)) {
    nodes.push(block(node, node.position));
    const inner = canvas.nodes.filter((n) => n.parent === node.id);
    if (!inner.length) continue;
    // The inner blocks sit on the composite's own canvas, placed relative to its canvasPosition.
    const origin = node.canvas_position ?? { x: node.position.x, y: node.position.y + nodeHeight(node) + 80 };
    const xs = inner.map((n) => n.position.x);
    const ys = inner.map((n) => n.position.y);
    const left = Math.min(...xs) - PAD;
    const top = Math.min(...ys) - PAD - 16;
    const frameId = `${node.id}::body`;
    nodes.push({
      id: frameId,
      type: "frame",
      position: { x: origin.x + left, y: origin.y + top },
      data: { title: `${node.title || nodeKind(node.type).label} · inside` },
      style: {
        width: Math.max(...xs) - left + NODE_WIDTH + PAD,
        height: Math.max(...inner.map((n) => n.position.y + nodeHeight(n))) - top + PAD,
      },
      selectable: false,
      focusable: false,
      draggable: false,
      zIndex: -1,
    });
    for (const child of inner) nodes.push(block(child, { x: child.position.x - left, y: child.position.y - top }, frameId));
  }
  const handleOf = (edge: CanvasEdge) => {
    const source = byId.get(edge.source);
    return source && source.ports.includes(edge.source_port) ? edge.source_port : OUT;
  };
  const edges: Edge[] = canvas.edges
    .filter((edge) => byId.has(edge.source) && byId.has(edge.target))
    .map((edge, index) => ({
      id: `e${index}`,
      source: edge.source,
      target: edge.target,
      sourceHandle: byId.get(edge.source)!.ports.length ? handleOf(edge) : OUT,
      targetHandle: edge.target_port || IN,
      focusable: false,
      className: statuses[edge.source] && statuses[edge.target] ? "edge-ran" : undefined,
    }));
  return { nodes, edges };
}

function byType(nodes: Node[], id: string): string | undefined {
  return nodes.find((node) => node.id === id)?.type;
}

export function Canvas({ canvas, statuses = {}, selected = null, onSelect }: {
  canvas: CanvasPayload;
  statuses?: Record<string, string>;
  selected?: string | null;
  onSelect: (nodeId: string | null) => void;
}) {
  const { nodes, edges } = useMemo(() => layout(canvas, statuses, selected), [canvas, statuses, selected]);
  if (canvas.problem) return <p className="notice error" role="alert">This canvas cannot be drawn: {canvas.problem}</p>;
  return (
    <div className="canvas" aria-label="Workflow canvas (read-only)">
      <ReactFlow nodes={nodes} edges={edges} nodeTypes={NODE_TYPES} fitView minZoom={0.1} maxZoom={2}
        nodesDraggable={false} nodesConnectable={false} edgesFocusable={false} elementsSelectable
        onNodesChange={(changes) => {
          // A click, or Enter on a focused node: React Flow asks to select it.
          const chosen = changes.find((change) => change.type === "select" && change.selected);
          if (chosen && "id" in chosen && chosen.id !== selected && byType(nodes, chosen.id) === "block") {
            onSelect(chosen.id);
          }
        }}
        onPaneClick={() => onSelect(null)}
        proOptions={{ hideAttribution: false }}>
        <Background gap={20} />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}

/** A node's configuration, as the canvas stores it. */
export function NodeConfig({ node }: { node: CanvasNode }) {
  const kind = nodeKind(node.type);
  return (
    <div className="node-config">
      <h3>{node.title || node.id}</h3>
      <dl className="facts">
        <dt>Type</dt><dd>{kind.label} ({node.type}){node.known ? "" : " — not supported by this server"}</dd>
        <dt>Node id</dt><dd><code>{node.id}</code></dd>
        {node.description && <><dt>Description</dt><dd>{node.description}</dd></>}
        {node.ports.length > 0 && (
          <><dt>Branches</dt><dd>{node.ports.map((p) => portLabel(node.type, p, node.data)).join(", ")}</dd></>
        )}
      </dl>
      <h4>Configuration</h4>
      <Json value={node.data} label={`Configuration of ${node.title || node.id}`} expanded={false} />
    </div>
  );
}
