"""Versioned DuckDB migrations, applied in order when a Store opens.

Append new migrations; never edit one that has shipped. Each runs in one transaction together with
the row that records it in `schema_migrations`.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "initial schema: candles, orders, fills, trades, decisions, checkpoints, backtests, parameters",
        """
        CREATE TABLE candles (
            symbol     VARCHAR   NOT NULL,
            timeframe  VARCHAR   NOT NULL,
            ts         TIMESTAMP NOT NULL,          -- bar open time, UTC
            open       DOUBLE    NOT NULL,
            high       DOUBLE    NOT NULL,
            low        DOUBLE    NOT NULL,
            close      DOUBLE    NOT NULL,
            volume     DOUBLE    NOT NULL,
            trades     INTEGER,
            source     VARCHAR,
            PRIMARY KEY (symbol, timeframe, ts)
        );

        CREATE TABLE orders (
            id                VARCHAR PRIMARY KEY,
            client_order_id   VARCHAR NOT NULL UNIQUE,
            exchange_order_id VARCHAR,
            run_id            VARCHAR NOT NULL,
            mode              VARCHAR NOT NULL,     -- backtest | paper | live
            symbol            VARCHAR NOT NULL,
            side              VARCHAR NOT NULL,     -- BUY | SELL
            type              VARCHAR NOT NULL,     -- MARKET | LIMIT | TRAILING | STOP_LIMIT
            size              DECIMAL(38, 18) NOT NULL,
            price             DECIMAL(38, 18),
            trail             DOUBLE,
            status            VARCHAR NOT NULL,
            filled_size       DECIMAL(38, 18) NOT NULL DEFAULT 0,
            avg_fill_price    DECIMAL(38, 18),
            fees              DECIMAL(38, 18) NOT NULL DEFAULT 0,
            created_at        TIMESTAMP NOT NULL,
            updated_at        TIMESTAMP NOT NULL,
            filled_at         TIMESTAMP,
            metadata          JSON
        );

        CREATE TABLE order_transitions (
            order_id    VARCHAR   NOT NULL,
            seq         INTEGER   NOT NULL,
            ts          TIMESTAMP NOT NULL,
            from_status VARCHAR   NOT NULL,
            to_status   VARCHAR   NOT NULL,
            reason      VARCHAR,
            PRIMARY KEY (order_id, seq)
        );

        CREATE TABLE fills (
            id              VARCHAR PRIMARY KEY,    -- exchange trade id (or simulated id)
            order_id        VARCHAR NOT NULL,
            client_order_id VARCHAR NOT NULL,
            run_id          VARCHAR NOT NULL,
            symbol          VARCHAR NOT NULL,
            side            VARCHAR NOT NULL,
            price           DECIMAL(38, 18) NOT NULL,
            size            DECIMAL(38, 18) NOT NULL,
            fee             DECIMAL(38, 18) NOT NULL,
            liquidity       VARCHAR NOT NULL,       -- MAKER | TAKER
            ts              TIMESTAMP NOT NULL
        );

        CREATE SEQUENCE trades_id_seq;
        CREATE TABLE trades (
            id               BIGINT PRIMARY KEY DEFAULT nextval('trades_id_seq'),
            run_id           VARCHAR NOT NULL,
            symbol           VARCHAR NOT NULL,
            entry_order_id   VARCHAR,
            exit_order_id    VARCHAR,
            entry_ts         TIMESTAMP,
            exit_ts          TIMESTAMP,
            entry_price      DOUBLE,
            exit_price       DOUBLE,
            size             DOUBLE,
            pnl              DOUBLE,
            fees             DOUBLE,
            duration_seconds BIGINT,
            metadata         JSON
        );

        CREATE SEQUENCE agent_decisions_id_seq;
        CREATE TABLE agent_decisions (
            id                BIGINT PRIMARY KEY DEFAULT nextval('agent_decisions_id_seq'),
            run_id            VARCHAR NOT NULL,
            ts                TIMESTAMP NOT NULL,
            agent_id          VARCHAR NOT NULL,     -- 'consensus' for the orchestrator's decision
            signal            VARCHAR NOT NULL,     -- TRAIL_BUY | TRAIL_SELL | HOLD
            confidence        DOUBLE NOT NULL,
            trail_distance    DOUBLE,
            weight            DOUBLE,
            reasoning         VARCHAR,
            execution_time_ms DOUBLE,
            market_data       JSON
        );

        CREATE TABLE agent_weights (
            agent_id   VARCHAR PRIMARY KEY,
            weight     DOUBLE NOT NULL,
            updated_at TIMESTAMP NOT NULL
        );

        CREATE SEQUENCE checkpoints_id_seq;
        CREATE TABLE checkpoints (
            id      BIGINT PRIMARY KEY DEFAULT nextval('checkpoints_id_seq'),
            run_id  VARCHAR NOT NULL,
            ts      TIMESTAMP NOT NULL,
            type    VARCHAR NOT NULL,               -- auto | manual | shutdown
            mode    VARCHAR NOT NULL,               -- backtest | paper | live
            state   JSON NOT NULL
        );

        CREATE TABLE grid_state (
            run_id     VARCHAR NOT NULL,
            symbol     VARCHAR NOT NULL,
            updated_at TIMESTAMP NOT NULL,
            state      JSON NOT NULL,
            PRIMARY KEY (run_id, symbol)
        );

        CREATE TABLE backtest_sessions (
            id                   VARCHAR PRIMARY KEY,
            name                 VARCHAR NOT NULL,
            description          VARCHAR,
            created_at           TIMESTAMP NOT NULL,
            status               VARCHAR NOT NULL,  -- running | completed | failed
            symbol               VARCHAR NOT NULL,
            timeframe            VARCHAR NOT NULL,
            start_ts             TIMESTAMP,
            end_ts               TIMESTAMP,
            parameters           JSON NOT NULL,
            parameter_version_id VARCHAR,
            error                VARCHAR
        );

        CREATE TABLE backtest_results (
            session_id   VARCHAR PRIMARY KEY,
            results      JSON NOT NULL,
            equity_curve JSON
        );

        CREATE TABLE parameter_versions (
            id         VARCHAR PRIMARY KEY,
            name       VARCHAR NOT NULL,
            tags       VARCHAR[],
            parent_ids VARCHAR[],
            created_at TIMESTAMP NOT NULL,
            notes      VARCHAR,
            parameters JSON NOT NULL,
            session_id VARCHAR                      -- attached backtest result
        );

        CREATE TABLE optimizations (
            id              VARCHAR PRIMARY KEY,
            created_at      TIMESTAMP NOT NULL,
            method          VARCHAR NOT NULL,
            objective       VARCHAR NOT NULL,
            search_space    JSON,
            results         JSON,
            best_parameters JSON
        );
        """,
    ),
    (
        2,
        "exchange outbox: exact order requests written before sending (idempotent resend, recovery)",
        """
        CREATE TABLE exchange_outbox (
            client_order_id   VARCHAR PRIMARY KEY,
            order_id          VARCHAR NOT NULL,
            run_id            VARCHAR,
            product_id        VARCHAR NOT NULL,
            side              VARCHAR NOT NULL,
            configuration     JSON NOT NULL,      -- the exact order_configuration sent (Decimal strings)
            state             VARCHAR NOT NULL,   -- sending | accepted | rejected | failed
            exchange_order_id VARCHAR,
            attempts          INTEGER NOT NULL DEFAULT 0,
            last_error        VARCHAR,
            created_at        TIMESTAMP NOT NULL,
            updated_at        TIMESTAMP NOT NULL
        );
        """,
    ),
    (
        3,
        "ARMED order status: trailing orders armed in the engine but never sent read ARMED, not SUBMITTED",
        """
        -- before ARMED existed an armed trailing order was SUBMITTED; one that fired got its 'trigger'
        -- in the metadata, so a TRAILING order without one never left the engine's trigger book
        CREATE TEMP TABLE armed_only AS
            SELECT id FROM orders
            WHERE type = 'TRAILING' AND json_extract_string(metadata, '$.trigger') IS NULL;
        UPDATE order_transitions SET to_status = 'ARMED'
            WHERE to_status = 'SUBMITTED' AND order_id IN (SELECT id FROM armed_only);
        UPDATE order_transitions SET from_status = 'ARMED'
            WHERE from_status = 'SUBMITTED' AND order_id IN (SELECT id FROM armed_only);
        UPDATE orders SET status = 'ARMED'
            WHERE status = 'SUBMITTED' AND id IN (SELECT id FROM armed_only);
        DROP TABLE armed_only;
        """,
    ),
    (
        4,
        "optimizer trials (one row per Optuna trial, with its fold figures), the parameter changes "
        "the daily loop weighed, and adaptive values",
        """
        CREATE TABLE optimization_trials (
            optimization_id VARCHAR NOT NULL,
            number          INTEGER NOT NULL,     -- the trial's number in its study
            state           VARCHAR NOT NULL,     -- COMPLETE | PRUNED | FAIL
            value           DOUBLE,               -- the objective (first objective when several)
            values          JSON,                 -- every objective value
            best_so_far     DOUBLE,               -- convergence: the best value up to this trial
            parameters      JSON NOT NULL,        -- dotted config keys → values
            attributes      JSON,                 -- fold returns, drawdown, fee share, Monte Carlo gate
            duration_ms     DOUBLE,
            PRIMARY KEY (optimization_id, number)
        );

        CREATE SEQUENCE parameter_changes_id_seq;
        CREATE TABLE parameter_changes (
            id             BIGINT PRIMARY KEY DEFAULT nextval('parameter_changes_id_seq'),
            ts             TIMESTAMP NOT NULL,
            run_id         VARCHAR,
            from_version   VARCHAR,
            to_version     VARCHAR,
            adopted        BOOLEAN NOT NULL,
            reason         VARCHAR NOT NULL,
            changes        JSON                   -- dotted key → [old, new]
        );

        CREATE TABLE adaptive_values (
            name       VARCHAR PRIMARY KEY,       -- dotted config key
            value      DOUBLE NOT NULL,
            confidence DOUBLE NOT NULL,
            outcomes   JSON NOT NULL,             -- the last outcomes, true = good
            updated_at TIMESTAMP NOT NULL
        );
        """,
    ),
    (
        5,
        "Claude: response cache (reproducible, free re-runs) and a ledger of paid calls (budget)",
        """
        CREATE TABLE ai_responses (
            key            VARCHAR PRIMARY KEY,   -- sha256 of kind, model, prompt version and the input
            kind           VARCHAR NOT NULL,      -- pattern | meta
            model          VARCHAR NOT NULL,
            prompt_version VARCHAR NOT NULL,
            response       JSON    NOT NULL,      -- the validated tool input
            created_at     TIMESTAMP NOT NULL
        );
        CREATE TABLE ai_calls (
            ts             TIMESTAMP NOT NULL,    -- wall time of the call, UTC
            kind           VARCHAR NOT NULL,
            model          VARCHAR NOT NULL,
            priority       VARCHAR NOT NULL,      -- normal | critical
            outcome        VARCHAR NOT NULL,      -- ok | invalid | failed
            input_tokens   INTEGER NOT NULL,
            output_tokens  INTEGER NOT NULL,
            cost_usd       DOUBLE  NOT NULL
        );
        """,
    ),
    (
        6,
        "self-tuning in paper and live: adaptive values per symbol with bounds and their adjustments; "
        "the symbol of each parameter change",
        """
        DROP TABLE adaptive_values;            -- never written before this version
        CREATE TABLE adaptive_values (
            symbol     VARCHAR NOT NULL,
            name       VARCHAR NOT NULL,          -- dotted config key
            value      DOUBLE NOT NULL,
            low        DOUBLE NOT NULL,           -- bounds the value never leaves
            high       DOUBLE NOT NULL,
            confidence DOUBLE NOT NULL,           -- 0.5 … 0.9, grows with evidence
            outcomes   JSON NOT NULL,             -- the last outcomes, true = good
            history    JSON NOT NULL,             -- the last adjustments: [{ts, old, new, reason}]
            updated_at TIMESTAMP NOT NULL,
            PRIMARY KEY (symbol, name)
        );
        ALTER TABLE parameter_changes ADD COLUMN symbol VARCHAR;
        """,
    ),
]
