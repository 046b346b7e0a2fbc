WITH "t9" AS (
  SELECT
    "t8"."kind",
    "t8"."channel",
    SUM("t8"."__w_first_touch") AS "c__first_touch",
    SUM("t8"."__w_first_touch" * "t8"."conv_value") AS "v__first_touch",
    SUM("t8"."__w_last_touch") AS "c__last_touch",
    SUM("t8"."__w_last_touch" * "t8"."conv_value") AS "v__last_touch"
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
      CASE WHEN "t7"."n" > 0 THEN "t7"."channel" ELSE '(unattributed)' END AS "channel",
      "t7"."campaign",
      "t7"."pos",
      "t7"."n",
      "t7"."last_at",
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
      END AS "won_pos",
      CASE WHEN "t7"."n" > 0 THEN CAST("t7"."pos" = 0 AS DOUBLE) ELSE 1.0 END AS "__w_first_touch",
      CASE
        WHEN "t7"."n" > 0
        THEN CAST("t7"."pos" = (
          "t7"."n" - 1
        ) AS DOUBLE)
        ELSE 1.0
      END AS "__w_last_touch"
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
          "t4"."conversion_id",
          "t4"."person_id",
          "t4"."conv_at",
          "t4"."kind",
          "t4"."conv_value",
          "t4"."lead_at",
          "t4"."opp_at",
          "t4"."won_at",
          "t5"."touchpoint_id",
          "t5"."tp_at",
          "t5"."channel",
          "t5"."campaign"
        FROM (
          SELECT
            "t0"."conversion_id",
            "t0"."person_id",
            "t0"."occurred_at" AS "conv_at",
            "t0"."kind",
            "t0"."value" AS "conv_value",
            "t0"."lead_created_at" AS "lead_at",
            "t0"."opportunity_created_at" AS "opp_at",
            "t0"."won_at"
          FROM "conversions" AS "t0"
        ) AS "t4"
        LEFT OUTER JOIN (
          SELECT
            "t1"."person_id" AS "tp_person",
            "t1"."occurred_at" AS "tp_at",
            "t1"."touchpoint_id",
            "t1"."channel",
            "t1"."campaign"
          FROM "touchpoints" AS "t1"
        ) AS "t5"
          ON "t4"."person_id" = "t5"."tp_person"
          AND "t5"."tp_at" <= "t4"."conv_at"
          AND "t5"."tp_at" >= (
            CASE
              WHEN (
                "t4"."lead_at" IS NOT NULL
              ) AND (
                "t4"."lead_at" < "t4"."conv_at"
              )
              THEN "t4"."lead_at"
              ELSE "t4"."conv_at"
            END - INTERVAL '7776000' SECOND
          )
      ) AS "t6"
    ) AS "t7"
  ) AS "t8"
  GROUP BY
    1,
    2
)
SELECT
  *
FROM (
  SELECT
    *
  FROM (
    SELECT
      'first_touch' AS "model",
      "t10"."kind",
      "t10"."channel",
      "t10"."c__first_touch" AS "conversions",
      "t10"."v__first_touch" AS "value"
    FROM "t9" AS "t10"
  ) AS "t11"
  UNION ALL
  SELECT
    *
  FROM (
    SELECT
      'last_touch' AS "model",
      "t10"."kind",
      "t10"."channel",
      "t10"."c__last_touch" AS "conversions",
      "t10"."v__last_touch" AS "value"
    FROM "t9" AS "t10"
  ) AS "t12"
) AS "t13"
ORDER BY
  "t13"."model" ASC,
  "t13"."kind" ASC,
  "t13"."channel" ASC
