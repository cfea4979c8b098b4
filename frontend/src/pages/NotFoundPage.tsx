import { Link } from "react-router-dom";

export function NotFoundPage() {
  return (
    <div className="panel">
      <h1>Page not found</h1>
      <p>
        There is no page at this address. Go to the <Link to="/fleet">fleet overview</Link>.
      </p>
    </div>
  );
}
