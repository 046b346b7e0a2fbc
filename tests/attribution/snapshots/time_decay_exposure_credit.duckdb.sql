SELECT
  'time_decay' AS "model",
  "t16"."conversion_id",
  "t16"."kind",
  "t16"."conv_at" AS "conversion_at",
  "t16"."touchpoint_id",
  "t16"."tp_at" AS "touch_at",
  CASE WHEN "t16"."n" > 0 THEN "t16"."channel" ELSE '(unattributed)' END AS "channel",
  "t16"."campaign",
  "t16"."__weight" AS "weight",
  "t16"."__weight" * "t16"."conv_value" AS "value"
FROM (
  SELECT
    "t15"."conversion_id",
    "t15"."person_id",
    "t15"."conv_at",
    "t15"."kind",
    "t15"."conv_value",
    "t15"."lead_at",
    "t15"."opp_at",
    "t15"."won_at",
    "t15"."touchpoint_id",
    "t15"."tp_at",
    "t15"."channel",
    "t15"."campaign",
    "t15"."pos",
    "t15"."n",
    "t15"."last_at",
    "t15"."lead_pos",
    "t15"."opp_pos",
    "t15"."won_pos",
    CASE
      WHEN "t15"."n" > 0
      THEN EXP(
        CAST(EPOCH(CAST("t15"."last_at" AS TIMESTAMP)) - EPOCH(CAST("t15"."tp_at" AS TIMESTAMP)) AS DOUBLE) * -0.0000026741789373454678
      ) / SUM(
        EXP(
          CAST(EPOCH(CAST("t15"."last_at" AS TIMESTAMP)) - EPOCH(CAST("t15"."tp_at" AS TIMESTAMP)) AS DOUBLE) * -0.0000026741789373454678
        )
      ) OVER (
        PARTITION BY "t15"."conversion_id"
        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
      )
      ELSE 1.0
    END AS "__weight"
  FROM (
    SELECT
      "t14".*
      EXCLUDE ("__before_opp", "__before_lead", "__before_won")
    FROM (
      SELECT
        "t13"."conversion_id",
        "t13"."person_id",
        "t13"."conv_at",
        "t13"."kind",
        "t13"."conv_value",
        "t13"."lead_at",
        "t13"."opp_at",
        "t13"."won_at",
        "t13"."touchpoint_id",
        "t13"."tp_at",
        "t13"."channel",
        "t13"."campaign",
        "t13"."pos",
        "t13"."n",
        "t13"."last_at",
        CASE
          WHEN COALESCE(
            (
              "t13"."kind" IS NULL
            ) OR "t13"."kind" IN ('lead', 'opportunity', 'won'),
            FALSE
          )
          AND (
            "t13"."__before_lead" > 0
          )
          THEN "t13"."__before_lead" - 1
          ELSE CAST(NULL AS BIGINT)
        END AS "lead_pos",
        CASE
          WHEN COALESCE((
            "t13"."kind" IS NULL
          ) OR "t13"."kind" IN ('opportunity', 'won'), FALSE)
          AND (
            "t13"."__before_opp" > 0
          )
          THEN "t13"."__before_opp" - 1
          ELSE CAST(NULL AS BIGINT)
        END AS "opp_pos",
        CASE
          WHEN COALESCE((
            "t13"."kind" IS NULL
          ) OR "t13"."kind" IN ('won'), FALSE)
          AND (
            "t13"."__before_won" > 0
          )
          THEN "t13"."__before_won" - 1
          ELSE CAST(NULL AS BIGINT)
        END AS "won_pos",
        "t13"."__before_lead",
        "t13"."__before_opp",
        "t13"."__before_won"
      FROM (
        SELECT
          "t12"."conversion_id",
          "t12"."person_id",
          "t12"."conv_at",
          "t12"."kind",
          "t12"."conv_value",
          "t12"."lead_at",
          "t12"."opp_at",
          "t12"."won_at",
          "t12"."touchpoint_id",
          "t12"."tp_at",
          "t12"."channel",
          "t12"."campaign",
          ROW_NUMBER() OVER (
            PARTITION BY "t12"."conversion_id"
            ORDER BY "t12"."tp_at" ASC, "t12"."touchpoint_id" ASC
            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
          ) - 1 AS "pos",
          COUNT("t12"."touchpoint_id") OVER (
            PARTITION BY "t12"."conversion_id"
            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
          ) AS "n",
          MAX("t12"."tp_at") OVER (
            PARTITION BY "t12"."conversion_id"
            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
          ) AS "last_at",
          "t12"."lead_pos",
          "t12"."opp_pos",
          "t12"."won_pos",
          SUM(
            CAST(COALESCE(
              "t12"."tp_at" <= CASE
                WHEN COALESCE("t12"."lead_at", "t12"."conv_at") > "t12"."conv_at"
                THEN "t12"."conv_at"
                ELSE COALESCE("t12"."lead_at", "t12"."conv_at")
              END,
              FALSE
            ) AS BIGINT)
          ) OVER (
            PARTITION BY "t12"."conversion_id"
            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
          ) AS "__before_lead",
          SUM(
            CAST(COALESCE(
              "t12"."tp_at" <= CASE
                WHEN COALESCE("t12"."opp_at", "t12"."conv_at") > "t12"."conv_at"
                THEN "t12"."conv_at"
                ELSE COALESCE("t12"."opp_at", "t12"."conv_at")
              END,
              FALSE
            ) AS BIGINT)
          ) OVER (
            PARTITION BY "t12"."conversion_id"
            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
          ) AS "__before_opp",
          SUM(
            CAST(COALESCE(
              "t12"."tp_at" <= CASE
                WHEN COALESCE("t12"."won_at", "t12"."conv_at") > "t12"."conv_at"
                THEN "t12"."conv_at"
                ELSE COALESCE("t12"."won_at", "t12"."conv_at")
              END,
              FALSE
            ) AS BIGINT)
          ) OVER (
            PARTITION BY "t12"."conversion_id"
            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
          ) AS "__before_won"
        FROM (
          SELECT
            "t11".*
            EXCLUDE ("__keep")
          FROM (
            SELECT
              *
            FROM (
              SELECT
                "t9"."conversion_id",
                "t9"."person_id",
                "t9"."conv_at",
                "t9"."kind",
                "t9"."conv_value",
                "t9"."lead_at",
                "t9"."opp_at",
                "t9"."won_at",
                "t9"."touchpoint_id",
                "t9"."tp_at",
                "t9"."channel",
                "t9"."campaign",
                "t9"."pos",
                "t9"."n",
                "t9"."last_at",
                "t9"."lead_pos",
                "t9"."opp_pos",
                "t9"."won_pos",
                (
                  LAG("t9"."channel") OVER (
                    PARTITION BY "t9"."conversion_id"
                    ORDER BY "t9"."tp_at" ASC, "t9"."touchpoint_id" ASC
                    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
                  ) IS NULL
                )
                OR (
                  LAG("t9"."channel") OVER (
                    PARTITION BY "t9"."conversion_id"
                    ORDER BY "t9"."tp_at" ASC, "t9"."touchpoint_id" ASC
                    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
                  ) <> "t9"."channel"
                ) AS "__keep"
              FROM (
                SELECT
                  "t8".*
                  EXCLUDE ("__before_opp", "__before_lead", "__before_won")
                FROM (
                  SELECT
                    "t7"."conversion_id",
                    "t7"."person_id",
                    "t7"."conv_at",
                    "t7"."kind",
                    "t7"."conv_value",
                    "t7"."lead_at",
                    "t7"."opp_at",
                    "t7"."won_at",
                    "t7"."touchpoint_id",
                    "t7"."tp_at",
                    "t7"."channel",
                    "t7"."campaign",
                    "t7"."pos",
                    "t7"."n",
                    "t7"."last_at",
                    "t7"."__before_lead",
                    "t7"."__before_opp",
                    "t7"."__before_won",
                    CASE
                      WHEN COALESCE((
                        "t7"."kind" IS NULL
                      ) OR "t7"."kind" IN ('lead', 'opportunity', 'won'), FALSE)
                      AND (
                        "t7"."__before_lead" > 0
                      )
                      THEN "t7"."__before_lead" - 1
                      ELSE CAST(NULL AS BIGINT)
                    END AS "lead_pos",
                    CASE
                      WHEN COALESCE((
                        "t7"."kind" IS NULL
                      ) OR "t7"."kind" IN ('opportunity', 'won'), FALSE)
                      AND (
                        "t7"."__before_opp" > 0
                      )
                      THEN "t7"."__before_opp" - 1
                      ELSE CAST(NULL AS BIGINT)
                    END AS "opp_pos",
                    CASE
                      WHEN COALESCE((
                        "t7"."kind" IS NULL
                      ) OR "t7"."kind" IN ('won'), FALSE)
                      AND (
                        "t7"."__before_won" > 0
                      )
                      THEN "t7"."__before_won" - 1
                      ELSE CAST(NULL AS BIGINT)
                    END AS "won_pos"
                  FROM (
                    SELECT
                      "t6"."conversion_id",
                      "t6"."person_id",
                      "t6"."conv_at",
                      "t6"."kind",
                      "t6"."conv_value",
                      "t6"."lead_at",
                      "t6"."opp_at",
                      "t6"."won_at",
                      "t6"."touchpoint_id",
                      "t6"."tp_at",
                      "t6"."channel",
                      "t6"."campaign",
                      ROW_NUMBER() OVER (
                        PARTITION BY "t6"."conversion_id"
                        ORDER BY "t6"."tp_at" ASC, "t6"."touchpoint_id" ASC
                        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
                      ) - 1 AS "pos",
                      COUNT("t6"."touchpoint_id") OVER (
                        PARTITION BY "t6"."conversion_id"
                        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
                      ) AS "n",
                      MAX("t6"."tp_at") OVER (
                        PARTITION BY "t6"."conversion_id"
                        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
                      ) AS "last_at",
                      SUM(
                        CAST(COALESCE(
                          "t6"."tp_at" <= CASE
                            WHEN COALESCE("t6"."lead_at", "t6"."conv_at") > "t6"."conv_at"
                            THEN "t6"."conv_at"
                            ELSE COALESCE("t6"."lead_at", "t6"."conv_at")
                          END,
                          FALSE
                        ) AS BIGINT)
                      ) OVER (
                        PARTITION BY "t6"."conversion_id"
                        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
                      ) AS "__before_lead",
                      SUM(
                        CAST(COALESCE(
                          "t6"."tp_at" <= CASE
                            WHEN COALESCE("t6"."opp_at", "t6"."conv_at") > "t6"."conv_at"
                            THEN "t6"."conv_at"
                            ELSE COALESCE("t6"."opp_at", "t6"."conv_at")
                          END,
                          FALSE
                        ) AS BIGINT)
                      ) OVER (
                        PARTITION BY "t6"."conversion_id"
                        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
                      ) AS "__before_opp",
                      SUM(
                        CAST(COALESCE(
                          "t6"."tp_at" <= CASE
                            WHEN COALESCE("t6"."won_at", "t6"."conv_at") > "t6"."conv_at"
                            THEN "t6"."conv_at"
                            ELSE COALESCE("t6"."won_at", "t6"."conv_at")
                          END,
                          FALSE
                        ) AS BIGINT)
                      ) OVER (
                        PARTITION BY "t6"."conversion_id"
                        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
                      ) AS "__before_won"
                    FROM (
                      SELECT
                        "t5"."conversion_id",
                        "t5"."person_id",
                        "t5"."conv_at",
                        "t5"."kind",
                        "t5"."conv_value",
                        "t5"."lead_at",
                        "t5"."opp_at",
                        "t5"."won_at",
                        "t4"."touchpoint_id",
                        "t4"."tp_at",
                        "t4"."channel",
                        "t4"."campaign"
                      FROM (
                        SELECT
                          "t0"."conversion_id",
                          "t0"."person_id",
                          "t0"."occurred_at" AS "conv_at",
                          "t0"."kind",
                          COALESCE("t0"."value", 0.0) AS "conv_value",
                          "t0"."lead_created_at" AS "lead_at",
                          "t0"."opportunity_created_at" AS "opp_at",
                          "t0"."won_at"
                        FROM "conversions" AS "t0"
                      ) AS "t5"
                      LEFT OUTER JOIN (
                        SELECT
                          "t1"."person_id" AS "tp_person",
                          "t1"."occurred_at" AS "tp_at",
                          "t1"."touchpoint_id",
                          "t1"."channel",
                          "t1"."campaign"
                        FROM "touchpoints" AS "t1"
                      ) AS "t4"
                        ON "t5"."person_id" = "t4"."tp_person"
                        AND "t4"."tp_at" <= "t5"."conv_at"
                        AND "t4"."tp_at" >= (
                          CASE
                            WHEN (
                              "t5"."lead_at" IS NOT NULL
                            ) AND (
                              "t5"."lead_at" < "t5"."conv_at"
                            )
                            THEN "t5"."lead_at"
                            ELSE "t5"."conv_at"
                          END - INTERVAL '7776000' SECOND
                        )
                    ) AS "t6"
                  ) AS "t7"
                ) AS "t8"
              ) AS "t9"
            ) AS "t10"
            WHERE
              "t10"."__keep"
          ) AS "t11"
        ) AS "t12"
      ) AS "t13"
    ) AS "t14"
  ) AS "t15"
) AS "t16"
