// "My items": the work assigned to the signed-in user, open first, with links to the loops.

import { useState } from "react";
import { Link } from "react-router-dom";

import { useApi } from "../api/ApiProvider";
import { useAsync } from "../api/useAsync";
import { WORK_ITEM_STATES, describeItem, myWorkItems } from "../api/workItems";
import { AsyncView } from "../components/AsyncView";

export function MyItemsPage() {
  const api = useApi();
  const [openOnly, setOpenOnly] = useState(true);
  const items = useAsync((signal) => myWorkItems(api.http, openOnly, signal), [api, openOnly]);
  return (
    <>
      <div className="page-head">
        <div>
          <h1>My items</h1>
          <p>Work assigned to you on loops; change an item's state on its loop's page.</p>
        </div>
        <div className="toolbar">
          <label className="field-inline">
            <input type="checkbox" checked={openOnly} onChange={(event) => setOpenOnly(event.target.checked)} />
            Open and in progress only
          </label>
        </div>
      </div>
      <AsyncView
        state={items.state}
        what="your items"
        onRetry={items.reload}
        isEmpty={(page) => page.items.length === 0}
        empty={<>Nothing is assigned to you{openOnly ? " that is still open" : ""}.</>}
      >
        {(page) => (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Loop</th>
                  <th scope="col">Item</th>
                  <th scope="col">Due</th>
                  <th scope="col">Work order</th>
                  <th scope="col">State</th>
                </tr>
              </thead>
              <tbody>
                {page.items.map((item) => (
                  <tr key={item.id} data-item={item.id}>
                    <td>
                      <Link to={`/fleet/loops/${encodeURIComponent(item.loop_id)}`}>{item.loop_id}</Link>
                    </td>
                    <td>
                      {describeItem(item)}
                      {item.text && <div className="small muted">{item.text}</div>}
                    </td>
                    <td className="nowrap">{item.due_date ?? <span className="muted">–</span>}</td>
                    <td>{item.work_order ?? <span className="muted">–</span>}</td>
                    <td>{WORK_ITEM_STATES.find((state) => state.value === item.state)?.label}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </AsyncView>
    </>
  );
}
