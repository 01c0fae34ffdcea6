/**
 * A trader's loop: bids under ids of its own, watches them change on a stream, moves one
 * to a new price, then cancels everything. Run against a node without keys:
 *
 *     node dist/examples/trader.js 127.0.0.1:7001
 */

import { Client } from "zmqex-client";

const node = new Client(process.argv[2] ?? "127.0.0.1:7001", { trader: "alice" });
const orders = await node.subscribe("orders"); // placed, each fill, each cancel: in order
try {
  await node.cancelOnDisconnect(5000); // if this process falls silent for 5 s, the node cancels alice's orders
  for (const [n, price] of ["49990.00", "49980.00", "49970.00"].entries()) {
    // our own id: sent twice (say, after a Timeout), it is still one order
    await node.place("buy", "0.1", price, { client_order_id: `grid-${n}`, ack: "accepted" });
  }
  for await (const { event, order } of orders) {
    console.log(event, order.order_id, order.client_order_id || "-", order.status, order.price, order.reason ?? "");
    if (event === "placed" && order.client_order_id === "grid-2" && order.price === "49970.00") {
      await node.amend({ client_order_id: "grid-2" }, { price: "49975.00" }); // a new price: a new order, same id
    } else if (event === "placed" && order.price === "49975.00") {
      break; // leaving the loop closes the subscription
    }
  }
  console.log("cancelled", await node.cancelAll()); // every open order of alice's at this node
} finally {
  orders.close();
  node.close();
}
